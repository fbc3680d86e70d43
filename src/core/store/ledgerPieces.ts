/**
 * Closed months in pieces: a compressed month (`ledger-YYYY-MM.jsonl.gz`) is written as a series of
 * independent gzip members of at most PIECE_LINES lines each, one model's entries per piece (and the
 * month's refusals, corrections and unreadable lines in pieces of their own). Concatenated gzip
 * members are one valid gzip file, so any gunzip (and an older version of this extension) still reads
 * the whole month; the index records each piece's byte range and what it holds (model, clients, time
 * range) so a filter or a page decompresses only the pieces that can match.
 *
 * Within a pieced month, entries are ordered by (time, id) (`orderKey`): the pieces of different models
 * overlap in time, and readers merge them by that key.
 */
import { promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { localDay, type LedgerFilter } from './ledgerIndex';
import { MAX_LINE_BYTES } from './ledgerFiles';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Lines per piece: small enough that a page or a filter decompresses little, large enough that a year is a few thousand pieces. */
export const PIECE_LINES = 1_000;
/** A piece is closed earlier once its text reaches this size. */
const PIECE_BYTES = 512 * 1024;
/** A piece is never decompressed beyond this (a damaged or hostile file). */
const MAX_PIECE_TEXT = 4 * 1024 * 1024;

export type PieceKind = 'entries' | 'refused' | 'corrections' | 'other';

export interface Piece {
  /** Byte range of the gzip member in the file. */
  off: number;
  len: number;
  /** Lines before this piece in the decompressed file (its first line is line `line + 1`). */
  line: number;
  lines: number;
  kind: PieceKind;
  /** The entries' model (kind 'entries'). */
  model: string;
  clients: string[];
  /** Earliest and latest parsable time (ms); NaN when none. */
  t0: number;
  t1: number;
  /** Some line has no parsable time (it passes only filters without a date range). */
  untimed: boolean;
  /** Smallest and largest `orderKey` of its entries. */
  first: string;
  last: string;
}

/** Order of entries within a pieced month: time, then id; unparsable times first. */
export function orderKey(time: string, id: string): string {
  const t = Date.parse(time);
  // toFixed, not String: see csvField (V8's number-to-string cache keeps its strings in the old generation).
  return `${Number.isFinite(t) && t >= 0 ? t.toFixed(0).padStart(15, '0') : ''}\u0000${id}`;
}

/** Whether `piece` may hold an entry passing `filter` (no false negatives). */
export function pieceMatches(piece: Piece, filter: LedgerFilter): boolean {
  return piece.kind === 'entries' && spanMatches([piece.model], piece.clients, piece.t0, piece.t1, filter);
}

/**
 * Whether entries of `models` and `clients` timed within [t0, t1] (ms; NaN when none has a parsable
 * time) may include one passing `filter` (no false negatives).
 */
export function spanMatches(models: readonly string[], clients: readonly string[], t0: number, t1: number, filter: LedgerFilter): boolean {
  if (models.length === 0) return false;
  if (filter.model !== null && !models.includes(filter.model)) return false;
  if (filter.client != null && !clients.includes(filter.client)) return false;
  if (filter.from === null && filter.to === null) return true;
  if (!Number.isFinite(t0)) return false;
  // The days [first, last] overlap the filter's.
  return (filter.from === null || localDay(new Date(t1)) >= filter.from) && (filter.to === null || localDay(new Date(t0)) <= filter.to);
}

/** What a line is filed under when a month is pieced. */
export interface PieceLine {
  kind: PieceKind;
  model?: string;
  client?: string;
  time?: string;
  id?: string;
}

interface Bucket {
  kind: PieceKind;
  model: string;
  lines: string[];
  bytes: number;
  clients: Set<string>;
  t0: number;
  t1: number;
  untimed: boolean;
  first: string;
  last: string;
}

/**
 * Writes a pieced month into an open file: lines are gathered per model (and kind) and each full
 * bucket becomes one gzip member (compressed off the event loop). Corrections are written last, after
 * every entry, so a reader of the whole file meets an entry before its correction.
 */
export class PieceWriter {
  readonly pieces: Piece[] = [];
  private readonly buckets = new Map<string, Bucket>();
  private readonly full: Bucket[] = [];
  private offset = 0;
  private linesWritten = 0;

  constructor(private readonly fh: fsp.FileHandle) {}

  /** Files one line; a bucket that is full waits for `writeFull`. */
  add(text: string, what: PieceLine): void {
    const key = `${what.kind}\u0000${what.model ?? ''}`;
    let b = this.buckets.get(key);
    if (!b) {
      b = { kind: what.kind, model: what.model ?? '', lines: [], bytes: 0, clients: new Set(), t0: NaN, t1: NaN, untimed: false, first: '', last: '' };
      this.buckets.set(key, b);
    }
    b.lines.push(text);
    b.bytes += text.length + 1;
    if (what.client !== undefined) b.clients.add(what.client);
    const t = what.time !== undefined ? Date.parse(what.time) : NaN;
    if (Number.isFinite(t)) {
      if (!(t >= b.t0)) b.t0 = t;
      if (!(t <= b.t1)) b.t1 = t;
    } else {
      b.untimed = true;
    }
    if (what.kind === 'entries') {
      const k = orderKey(what.time ?? '', what.id ?? '');
      if (b.lines.length === 1 || k < b.first) b.first = k;
      if (b.lines.length === 1 || k > b.last) b.last = k;
    }
    if (what.kind !== 'corrections' && (b.lines.length >= PIECE_LINES || b.bytes >= PIECE_BYTES)) {
      this.buckets.delete(key);
      this.full.push(b);
    }
  }

  /** Writes the buckets that are full (call between chunks of input, so memory stays bounded). */
  async writeFull(): Promise<void> {
    while (this.full.length > 0) await this.write(this.full.shift()!);
  }

  /** Writes what is left (corrections last); resolves with the pieces in file order. */
  async finish(): Promise<Piece[]> {
    await this.writeFull();
    const rest = [...this.buckets.values()].sort((a, b) => Number(a.kind === 'corrections') - Number(b.kind === 'corrections'));
    this.buckets.clear();
    for (const b of rest) await this.write(b);
    return this.pieces;
  }

  private async write(b: Bucket): Promise<void> {
    if (b.lines.length === 0) return;
    const data = await gzipAsync(Buffer.from(`${b.lines.join('\n')}\n`, 'utf8'));
    let off = 0;
    while (off < data.length) off += (await this.fh.write(data, off, data.length - off, this.offset + off)).bytesWritten;
    this.pieces.push({
      off: this.offset,
      len: data.length,
      line: this.linesWritten,
      lines: b.lines.length,
      kind: b.kind,
      model: b.model,
      clients: [...b.clients].sort(),
      t0: b.t0,
      t1: b.t1,
      untimed: b.untimed,
      first: b.first,
      last: b.last,
    });
    this.offset += data.length;
    this.linesWritten += b.lines.length;
  }
}

/**
 * A decompressed piece: its text and where each line lies in it. Lines are decoded only when asked
 * for, so a reader holding many pieces at once (a merge) holds their compact bytes, not a string per line.
 */
export class PieceText {
  static readonly EMPTY = new PieceText(Buffer.alloc(0), new Uint32Array(0), 0);

  /** `ends[i]`: the offset of line i's newline (or the text's end). */
  private constructor(
    private readonly text: Buffer,
    private ends: Uint32Array,
    private readonly firstLine: number,
  ) {}

  static of(text: Buffer, firstLine: number): PieceText {
    // Counted first, so the offsets fit one typed array (no growing, no boxed numbers).
    let count = 0;
    for (let pos = 0; pos < text.length; count++) {
      const nl = text.indexOf(10, pos);
      pos = nl < 0 ? text.length : nl + 1;
    }
    const ends = new Uint32Array(count);
    for (let pos = 0, i = 0; i < count; i++) {
      const nl = text.indexOf(10, pos);
      ends[i] = nl < 0 ? text.length : nl;
      pos = ends[i] + 1;
    }
    return new PieceText(text, ends, firstLine);
  }

  get lines(): number {
    return this.ends.length;
  }

  /** Line `i`'s text; undefined when it is longer than MAX_LINE_BYTES (such a line is skipped, as in a plain file). */
  line(i: number): string | undefined {
    const start = i === 0 ? 0 : this.ends[i - 1] + 1;
    const end = this.ends[i];
    return end - start <= MAX_LINE_BYTES ? this.text.toString('utf8', start, end) : undefined;
  }

  /**
   * `orderKey` of line `i` read off its bytes when it starts as the writer writes an entry
   * (`{"time":"…","id":"…"`, no escapes), without decoding the line; undefined otherwise (or when
   * the line is too long), and the caller decides from the parsed line.
   */
  quickOrderKey(i: number): string | undefined {
    const start = i === 0 ? 0 : this.ends[i - 1] + 1;
    const end = this.ends[i];
    if (
      end - start > MAX_LINE_BYTES ||
      end - start < TIME_PREFIX.length ||
      this.text.compare(TIME_PREFIX, 0, TIME_PREFIX.length, start, start + TIME_PREFIX.length) !== 0
    )
      return undefined;
    const timeStart = start + TIME_PREFIX.length;
    const timeEnd = this.text.indexOf(QUOTE, timeStart);
    if (timeEnd < 0 || timeEnd > end - ID_PREFIX.length || this.text.compare(ID_PREFIX, 0, ID_PREFIX.length, timeEnd, timeEnd + ID_PREFIX.length) !== 0)
      return undefined;
    const idStart = timeEnd + ID_PREFIX.length;
    const idEnd = this.text.indexOf(QUOTE, idStart);
    if (idEnd < 0 || idEnd >= end) return undefined;
    const backslash = this.text.indexOf(BACKSLASH, timeStart);
    if (backslash >= 0 && backslash < idEnd) return undefined;
    return orderKey(this.text.toString('latin1', timeStart, timeEnd), this.text.toString('utf8', idStart, idEnd));
  }

  /**
   * Frees the text now (the piece is done with): a merge holds its pieces long enough for V8 to move
   * their buffers to the old generation, where they would wait for a full collection — a year's
   * export then peaked at ~65 MB of such garbage. Moving the memory to a new, unreferenced buffer lets
   * the next minor collection free it. Never a pooled buffer (shared with other Buffers).
   */
  release(): void {
    const ab = this.text.buffer;
    if (ab.byteLength > Buffer.poolSize && !(ab instanceof SharedArrayBuffer)) structuredClone(ab, { transfer: [ab] });
    this.ends = new Uint32Array(0);
  }

  /** Line `i`'s number in the whole file (1-based). */
  lineNo(i: number): number {
    return this.firstLine + i + 1;
  }
}

/** How an entry's line starts as the writer writes it (`sanitize` puts `time` first, then `id`). */
export const TIME_PREFIX = Buffer.from('{"time":"');
const ID_PREFIX = Buffer.from('","id":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Decompresses one piece. Rejects when the piece is damaged. */
export async function readPiece(file: string, piece: Piece): Promise<PieceText> {
  const fh = await fsp.open(file, 'r');
  let raw: Buffer;
  try {
    raw = Buffer.allocUnsafe(piece.len);
    const { bytesRead } = await fh.read(raw, 0, piece.len, piece.off);
    if (bytesRead !== piece.len) throw new Error(`piece at byte ${piece.off} is cut short`);
  } finally {
    await fh.close();
  }
  // The member's trailer gives its text's size (mod 2^32): zlib then writes the text into one buffer
  // instead of 16 KiB chunks concatenated at the end (a year's export churned ~0.6 GB of those).
  const size = raw.length >= 4 ? raw.readUInt32LE(raw.length - 4) : 0;
  const chunkSize = Math.min(MAX_PIECE_TEXT, Math.max(64 * 1024, size + 1));
  return PieceText.of(await gunzipAsync(raw, { maxOutputLength: MAX_PIECE_TEXT, chunkSize }), piece.line);
}

/** Serialised pieces (NaN is not JSON). */
export function piecesToJSON(pieces: Piece[]): unknown[] {
  return pieces.map((p) => ({ ...p, t0: Number.isFinite(p.t0) ? p.t0 : null, t1: Number.isFinite(p.t1) ? p.t1 : null }));
}

export function piecesFromJSON(v: unknown): Piece[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: Piece[] = [];
  for (const p of v as Array<Record<string, unknown>>) {
    if (!p || typeof p.off !== 'number' || typeof p.len !== 'number' || typeof p.line !== 'number' || typeof p.lines !== 'number') return undefined;
    out.push({ ...(p as unknown as Piece), t0: typeof p.t0 === 'number' ? p.t0 : NaN, t1: typeof p.t1 === 'number' ? p.t1 : NaN });
  }
  return out;
}
