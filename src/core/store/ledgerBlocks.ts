/**
 * Blocks of a live month file. The current month is a plain file every process appends to, so it
 * cannot be written in pieces like a closed month (ledgerPieces.ts); instead, as its index is extended,
 * consecutive lines are described in blocks (byte range, models, clients, time range, corrections),
 * so a filter, a page or a cursor reads only the blocks that can matter, plus whatever was appended
 * after the index; of the other blocks, only the corrections of rows shown. The last block stays open
 * and grows with the next extension of the index.
 */
import type { LedgerFilter } from './ledgerIndex';
import { spanMatches } from './ledgerPieces';
import type { LedgerRecord } from './ledgerRecords';

/**
 * A block is closed at this many lines or bytes (ledger lines are ~300 bytes: about 220 lines). On
 * the bench's live month (83k entries, 25 MB, one entry in 2,000 of a rare model) a rare-model page
 * of 20 rows took 5 ms with 64 KB blocks, 11 ms with 128 KB, 22 ms with 256 KB (40 ms reading the
 * whole file), for an index larger by 133, 67 and 34 KB than the totals' 610 KB, whose rewrite at
 * each extension of the index cost the same within noise.
 */
export const BLOCK_LINES = 256;
export const BLOCK_BYTES = 64 * 1024;

/** How corrections are written (`correctionLine`): a block's corrections are found by this prefix. */
export const CORRECTION_START = '{"type":"correction"';

export interface Block {
  /** Byte range of whole lines in the file. */
  off: number;
  len: number;
  lines: number;
  /** Models and clients of its entries (none: the block holds no entry). */
  models: string[];
  clients: string[];
  /** Earliest and latest parsable entry time (ms); NaN when none. */
  t0: number;
  t1: number;
  /** Some entry has no parsable time (it passes only filters without a date range). */
  untimed: boolean;
  /** Correction lines (a correction may follow its entry by blocks: read where it can concern a row shown). */
  corrections: number;
  /** Earliest and latest time (ms) of the entries its corrections correct; NaN when none. */
  c0: number;
  c1: number;
  /**
   * Some correction does not start with CORRECTION_START (the block's corrections are then found by
   * decoding its lines) or has no parsable time (it may concern any entry).
   */
  oddCorrections: boolean;
}

/** Byte offset just after the last block (0 when none). */
export function blocksEnd(blocks: readonly Block[]): number {
  const last = blocks[blocks.length - 1];
  return last ? last.off + last.len : 0;
}

const isFull = (b: Block): boolean => b.lines >= BLOCK_LINES || b.len >= BLOCK_BYTES;

/** Extends `blocks` with the lines of a forward scan that starts at `blocksEnd(blocks)`. */
export class BlockGrower {
  constructor(private readonly blocks: Block[]) {}

  /** One complete line ending (after its newline) at byte `end`. */
  add(rec: LedgerRecord, text: string, end: number): void {
    let b = this.blocks[this.blocks.length - 1];
    const covered = blocksEnd(this.blocks);
    if (end <= covered) return; // already described (another scan of the same index got there first)
    if (!b || isFull(b)) this.blocks.push((b = emptyBlock(covered)));
    b.len = end - b.off;
    b.lines++;
    if (rec.kind === 'entry') {
      const e = rec.entry;
      if (!b.models.includes(e.model)) b.models.push(e.model);
      if (!b.clients.includes(e.client)) b.clients.push(e.client);
      const t = Date.parse(e.time);
      if (Number.isFinite(t)) {
        if (!(t >= b.t0)) b.t0 = t;
        if (!(t <= b.t1)) b.t1 = t;
      } else {
        b.untimed = true;
      }
    } else if (rec.kind === 'correction') {
      b.corrections++;
      const t = Date.parse(rec.correction.time);
      if (Number.isFinite(t)) {
        if (!(t >= b.c0)) b.c0 = t;
        if (!(t <= b.c1)) b.c1 = t;
      }
      if (!text.startsWith(CORRECTION_START) || !Number.isFinite(t)) b.oddCorrections = true;
    }
  }

  /** The scan ended at `offset` (after the last complete line): skipped overlong lines before it belong to the last block. */
  finish(offset: number): void {
    const covered = blocksEnd(this.blocks);
    if (offset <= covered) return;
    let b = this.blocks[this.blocks.length - 1];
    if (!b || isFull(b)) this.blocks.push((b = emptyBlock(covered)));
    b.len = offset - b.off;
  }
}

function emptyBlock(off: number): Block {
  return { off, len: 0, lines: 0, models: [], clients: [], t0: NaN, t1: NaN, untimed: false, corrections: 0, c0: NaN, c1: NaN, oddCorrections: false };
}

/** Whether `block` may hold an entry passing `filter` (no false negatives). */
export function blockMatches(block: Block, filter: LedgerFilter): boolean {
  return spanMatches(block.models, block.clients, block.t0, block.t1, filter);
}

/** Whether `block` may hold an entry of time `t` (ms, finite). */
export function blockSpans(block: Block, t: number): boolean {
  return block.t0 <= t && t <= block.t1;
}

/** Whether `block` may hold a correction of an entry of one of `times` (ms, ascending). */
export function blockCorrects(block: Block, times: readonly number[]): boolean {
  if (block.corrections === 0) return false;
  if (block.oddCorrections || !Number.isFinite(block.c0)) return true;
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < block.c0) lo = mid + 1;
    else hi = mid;
  }
  return lo < times.length && times[lo] <= block.c1;
}

const orNull = (t: number): number | null => (Number.isFinite(t) ? t : null);
const orNaN = (t: unknown): number => (typeof t === 'number' ? t : NaN);

/** Serialised blocks (NaN is not JSON). */
export function blocksToJSON(blocks: Block[]): unknown[] {
  return blocks.map((b) => ({ ...b, t0: orNull(b.t0), t1: orNull(b.t1), c0: orNull(b.c0), c1: orNull(b.c1) }));
}

export function blocksFromJSON(v: unknown): Block[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: Block[] = [];
  for (const b of v as Array<Record<string, unknown>>) {
    // Contiguous from the file's start, or not an index of this file at all.
    if (!b || b.off !== blocksEnd(out) || typeof b.len !== 'number' || typeof b.lines !== 'number') return undefined;
    if (!Array.isArray(b.models) || !Array.isArray(b.clients) || typeof b.corrections !== 'number') return undefined;
    out.push({ ...(b as unknown as Block), t0: orNaN(b.t0), t1: orNaN(b.t1), c0: orNaN(b.c0), c1: orNaN(b.c1) });
  }
  return out;
}
