/**
 * Blocks of a live month file. The current month is a plain file every process appends to, so it
 * cannot be written in pieces like a closed month (ledgerPieces.ts); instead, as its index is extended,
 * consecutive lines are described in blocks (byte range, models, clients, time range, corrections),
 * so a filter, a page or a cursor reads only the blocks that can matter, plus whatever was appended
 * after the index. The last block stays open and grows with the next extension of the index.
 */
import type { LedgerFilter } from './ledgerIndex';
import { spanMatches } from './ledgerPieces';
import type { LedgerRecord } from './ledgerRecords';

/**
 * A block is closed at this many lines or bytes. Measured on the bench's live month (83k entries,
 * 25 MB, one model in 2,000 rare): 500 lines reads a quarter of the file for the rare model and keeps
 * the index at about 170 blocks (~50 KB of JSON, rewritten at each extension); see README.
 */
export const BLOCK_LINES = 500;
const BLOCK_BYTES = 128 * 1024;

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
  /** Correction lines: read even where no entry matches (a correction may follow its entry by blocks). */
  corrections: number;
  /** Some correction does not start with CORRECTION_START (the block's corrections are then found by decoding its lines). */
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
      if (!text.startsWith(CORRECTION_START)) b.oddCorrections = true;
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
  return { off, len: 0, lines: 0, models: [], clients: [], t0: NaN, t1: NaN, untimed: false, corrections: 0, oddCorrections: false };
}

/** Whether `block` may hold an entry passing `filter` (no false negatives). */
export function blockMatches(block: Block, filter: LedgerFilter): boolean {
  return spanMatches(block.models, block.clients, block.t0, block.t1, filter);
}

/** Whether `block` may hold an entry of time `t` (ms, finite). */
export function blockSpans(block: Block, t: number): boolean {
  return block.t0 <= t && t <= block.t1;
}

/** Serialised blocks (NaN is not JSON). */
export function blocksToJSON(blocks: Block[]): unknown[] {
  return blocks.map((b) => ({ ...b, t0: Number.isFinite(b.t0) ? b.t0 : null, t1: Number.isFinite(b.t1) ? b.t1 : null }));
}

export function blocksFromJSON(v: unknown): Block[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: Block[] = [];
  for (const b of v as Array<Record<string, unknown>>) {
    // Contiguous from the file's start, or not an index of this file at all.
    if (!b || b.off !== blocksEnd(out) || typeof b.len !== 'number' || typeof b.lines !== 'number') return undefined;
    if (!Array.isArray(b.models) || !Array.isArray(b.clients) || typeof b.corrections !== 'number') return undefined;
    out.push({ ...(b as unknown as Block), t0: typeof b.t0 === 'number' ? b.t0 : NaN, t1: typeof b.t1 === 'number' ? b.t1 : NaN });
  }
  return out;
}
