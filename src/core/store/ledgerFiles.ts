/**
 * The ledger's files on disk: names, line-by-line streaming (plain or gzip) with a bound on line
 * length, a backward reader for the live file, whole-line appends and the directory lock.
 *
 * Layout of the data directory (see README "Cost ledger"):
 * - `ledger-YYYY-MM.jsonl`            the month's live file; every process appends whole lines to it
 * - `ledger-YYYY-MM.jsonl.gz`         a closed month, compressed in pieces (gzip members, see ledgerPieces.ts)
 * - `ledger-YYYY-MM.migrated.jsonl`   the month's entries moved out of the old size-rotated files
 * - `ledger-YYYY-MM.jsonl.<pid>.closing`  a live file taken aside while it is being compressed
 * - `ledger-YYYY-MM.compress.json`    journal of a compression (which sources the new .gz replaced)
 * - `ledger.jsonl`, `ledger.N.jsonl`  the old size-rotated files, until they are migrated
 * - `ledger.lock`                     held while one process migrates, compresses or deletes
 * - `.ledger-index/`                  per-file summaries and a closed month's pieces (a cache; deleting it costs a rebuild)
 */
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';

/** Longest line read; ledger lines are well under 2 KiB, anything longer is damage. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Appends are written in pieces of whole lines no larger than this (one write(2) each). */
export const MAX_WRITE_BYTES = 64 * 1024;

export type FileKind = 'legacy' | 'gz' | 'migrated' | 'closing' | 'live';

export interface LedgerFile {
  name: string;
  /** `YYYY-MM`, or '' for the old size-rotated files (any month). */
  month: string;
  kind: FileKind;
  /** Order among files of the same month, oldest content first. */
  rank: number;
}

const MONTH_FILE = /^ledger-(\d{4}-\d{2})(\.migrated)?\.jsonl(\.gz)?$/;
const CLOSING_FILE = /^ledger-(\d{4}-\d{2})\.jsonl\.\d+\.closing$/;
const LEGACY_FILE = /^ledger(?:\.([1-9]\d*))?\.jsonl$/;
export const LOCK_FILE = 'ledger.lock';
export const INDEX_DIR = '.ledger-index';
export const MIGRATION_JOURNAL = 'ledger-migration.json';

export const liveName = (month: string): string => `ledger-${month}.jsonl`;
export const gzName = (month: string): string => `ledger-${month}.jsonl.gz`;
export const migratedName = (month: string): string => `ledger-${month}.migrated.jsonl`;
export const journalName = (month: string): string => `ledger-${month}.compress.json`;

/** `YYYY-MM` (UTC) of an ISO time; undefined when unparsable. */
export function monthOfTime(iso: string): string | undefined {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? monthOf(new Date(t)) : undefined;
}

export function monthOf(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** `month` moved by `n` months. */
export function addMonths(month: string, n: number): string {
  const [y, m] = month.split('-').map(Number);
  return monthOf(new Date(Date.UTC(y, m - 1 + n, 1)));
}

/** Classifies a directory entry; undefined for anything that is not ledger data. */
export function classify(name: string): LedgerFile | undefined {
  let m = MONTH_FILE.exec(name);
  if (m) {
    if (m[2] && m[3]) return undefined;
    if (m[3]) return { name, month: m[1], kind: 'gz', rank: 0 };
    if (m[2]) return { name, month: m[1], kind: 'migrated', rank: 1 };
    return { name, month: m[1], kind: 'live', rank: 3 };
  }
  m = CLOSING_FILE.exec(name);
  if (m) return { name, month: m[1], kind: 'closing', rank: 2 };
  m = LEGACY_FILE.exec(name);
  // Old rotation: ledger.N.jsonl is older the higher N is; ledger.jsonl is the newest.
  if (m) return { name, month: '', kind: 'legacy', rank: m[1] ? -Number(m[1]) : 0 };
  return undefined;
}

/** Ledger files oldest first: legacy files, then months ascending, each month gz → migrated → closing → live. */
export function sortFiles(files: LedgerFile[]): LedgerFile[] {
  return files.sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : a.rank - b.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
}

export interface LineSink {
  /** A complete line (without its newline) and the byte offset just after its newline. Return false to stop reading. */
  line(text: string, lineNo: number, end: number): boolean | void;
  /** Cheap look at a line's bytes before it is decoded; false skips it (filters that can tell from the bytes). */
  want?(buf: Buffer, start: number, end: number): boolean;
  /** Awaited after each chunk read (backpressure for a sink that writes somewhere). */
  chunkDone?(): Promise<void> | void;
  /** A line longer than MAX_LINE_BYTES was skipped without being held in memory. */
  oversized(lineNo: number): void;
}

export interface ScanEnd {
  /** Lines seen (complete ones, including skipped ones). */
  lines: number;
  /** Plain files: byte offset just after the last complete line read (where a later scan resumes). */
  offset: number;
  /** Bytes after the last newline (a line still being written, or torn by a crash). */
  tail: number;
  /** Reading stopped early because the sink said so. */
  stopped: boolean;
  /** A read or decompression error ended the scan (what was read before it was delivered). */
  error?: Error;
}

/**
 * Streams `file` line by line (gunzipping `.gz`), never holding more than MAX_LINE_BYTES of one
 * line. A plain file's unterminated last line is not delivered (it may still be being written); a
 * compressed file's is (it can only be a crash's leftover, and the sink decides). A read error ends
 * the scan (`error`); an error thrown by `chunkDone` rejects.
 */
export async function scanLines(file: string, sink: LineSink, opts: { start?: number; lineNo?: number } = {}): Promise<ScanEnd> {
  const gzip = file.endsWith('.gz');
  const start = gzip ? 0 : (opts.start ?? 0);
  const raw = createReadStream(file, { start, highWaterMark: 256 * 1024 });
  const stream = gzip ? raw.pipe(createGunzip()) : raw;
  if (gzip) raw.once('error', (err) => stream.destroy(err));
  let lineNo = opts.lineNo ?? 0;
  let offset = start;
  let consumed = start;
  let carry: Buffer[] = [];
  let carryLen = 0;
  let skipping = false;
  let stopped = false;
  let sinkFailed: { err: unknown } | undefined;
  const end = (error?: Error): ScanEnd => ({ lines: lineNo - (opts.lineNo ?? 0), offset, tail: skipping ? MAX_LINE_BYTES + 1 : carryLen, stopped, error });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let pos = 0;
      for (;;) {
        const nl = chunk.indexOf(10, pos);
        if (nl < 0) {
          const rest = chunk.length - pos;
          if (!skipping && carryLen + rest > MAX_LINE_BYTES) {
            skipping = true;
            carry = [];
            carryLen = 0;
          }
          if (!skipping && rest > 0) {
            carry.push(chunk.subarray(pos));
            carryLen += rest;
          }
          break;
        }
        lineNo++;
        const pieceLen = nl - pos;
        if (skipping || carryLen + pieceLen > MAX_LINE_BYTES) {
          sink.oversized(lineNo);
        } else if (carryLen > 0) {
          const buf = Buffer.concat([...carry, chunk.subarray(pos, nl)]);
          if ((!sink.want || sink.want(buf, 0, buf.length)) && sink.line(buf.toString('utf8'), lineNo, consumed + nl + 1) === false) stopped = true;
        } else if ((!sink.want || sink.want(chunk, pos, nl)) && sink.line(chunk.toString('utf8', pos, nl), lineNo, consumed + nl + 1) === false) {
          stopped = true;
        }
        skipping = false;
        carry = [];
        carryLen = 0;
        pos = nl + 1;
        offset = consumed + pos;
        if (stopped) break;
      }
      consumed += chunk.length;
      if (stopped) break;
      if (sink.chunkDone) {
        try {
          await sink.chunkDone();
        } catch (err) {
          sinkFailed = { err };
          break;
        }
      }
    }
  } catch (err) {
    return end(err instanceof Error ? err : new Error(String(err)));
  } finally {
    raw.destroy();
    if (gzip) stream.destroy();
  }
  // The sink's own failure (its output failed, or it was cancelled) is its caller's, not a damaged file.
  if (sinkFailed) throw sinkFailed.err;
  if (!stopped && gzip && carryLen > 0 && !skipping) {
    lineNo++;
    sink.line(Buffer.concat(carry).toString('utf8'), lineNo, consumed);
    carryLen = 0;
  }
  return end();
}

/** A byte range of a plain file read by `scanLinesBackward`, with its own look at each line's bytes. */
export interface LineRange {
  start: number;
  end: number;
  want?: (buf: Buffer, start: number, end: number) => boolean;
}

/**
 * Reads a plain file's complete lines newest first, from its end backwards (an unterminated last line
 * is not delivered). Lines longer than MAX_LINE_BYTES are skipped (the forward scan that builds the
 * index warns about them); `want` can rule lines out before they are decoded. `ranges` reads only
 * parts of the file instead, in the order given (each range is read backwards, starting at a line's
 * start); it is iterated lazily, so what it yields next can depend on the lines read so far.
 */
export async function scanLinesBackward(
  file: string,
  onLine: (text: string) => boolean | void,
  want?: (buf: Buffer, start: number, end: number) => boolean,
  ranges?: (file: { size: number; ino: number }) => Iterable<LineRange>,
): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    const st = await fh.stat();
    for (const r of ranges ? ranges(st) : [{ start: 0, end: st.size, want }]) {
      if (r.end > r.start && !(await scanRangeBackward(fh, r, onLine))) return;
    }
  } finally {
    await fh.close();
  }
}

/** One range of `scanLinesBackward`; false when `onLine` stopped the reading. */
async function scanRangeBackward(fh: fsp.FileHandle, range: LineRange, onLine: (text: string) => boolean | void): Promise<boolean> {
  const { start, want } = range;
  let pos = range.end;
  const chunkSize = 256 * 1024;
  let carry: Buffer = Buffer.alloc(0);
  let oversized = false;
  let first = true;
  while (pos > start) {
    const len = Math.min(chunkSize, pos - start);
    pos -= len;
    const chunk = Buffer.allocUnsafe(len);
    const { bytesRead } = await fh.read(chunk, 0, len, pos);
    let buf = carry.length > 0 ? Buffer.concat([chunk.subarray(0, bytesRead), carry]) : chunk.subarray(0, bytesRead);
    let lineEnd = buf.length;
    if (first) {
      first = false;
      // An unterminated last line may still be being written: not part of the ledger yet.
      const lastNl = buf.lastIndexOf(10);
      if (lastNl < 0) {
        carry = Buffer.alloc(0);
        oversized = true; // everything before the first newline found belongs to that line
        continue;
      }
      lineEnd = lastNl;
    }
    for (;;) {
      const nl = lineEnd > 0 ? buf.lastIndexOf(10, lineEnd - 1) : -1;
      if (nl < 0) break;
      if (!oversized && lineEnd - nl - 1 <= MAX_LINE_BYTES && (!want || want(buf, nl + 1, lineEnd))) {
        if (onLine(buf.toString('utf8', nl + 1, lineEnd)) === false) return false;
      }
      oversized = false;
      lineEnd = nl;
    }
    buf = buf.subarray(0, lineEnd);
    if (buf.length > MAX_LINE_BYTES) {
      oversized = true;
      carry = Buffer.alloc(0);
    } else {
      carry = Buffer.from(buf);
    }
  }
  if (!oversized && carry.length > 0 && (!want || want(carry, 0, carry.length))) return onLine(carry.toString('utf8')) !== false;
  return true;
}

/**
 * Appends `text` (whole lines) to `file` with O_APPEND, in writes of whole lines of at most
 * MAX_WRITE_BYTES: the kernel places each write at the end of the file atomically, so lines from
 * several processes never interleave.
 */
export async function appendLines(file: string, lines: string[]): Promise<{ mendedTorn: boolean }> {
  // One open for the check and the write ('a+': reads anywhere, writes append): this runs once per ledger batch.
  const fh = await fsp.open(file, 'a+');
  try {
    // A file whose last byte is not a newline ends with a line torn by a crash: a newline first keeps ours whole.
    const { size } = await fh.stat();
    let mendedTorn = false;
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      mendedTorn = last[0] !== 0x0a;
    }
    let buf: string[] = mendedTorn ? ['\n'] : [];
    let pending = buf.length;
    const write = async (): Promise<void> => {
      if (buf.length === 0) return;
      const data = Buffer.from(buf.join(''), 'utf8');
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
      buf = [];
      pending = 0;
    };
    for (const line of lines) {
      const bytes = Buffer.byteLength(line, 'utf8');
      if (pending > 0 && pending + bytes > MAX_WRITE_BYTES) await write();
      buf.push(line);
      pending += bytes;
    }
    await write();
    return { mendedTorn };
  } finally {
    await fh.close();
  }
}

/** A lock older than this is a crashed holder's. */
const STALE_LOCK_MS = 10 * 60_000;

/**
 * Runs `fn` holding the directory's lock file. When another process holds it: returns undefined at
 * once (that process is doing the same maintenance), or with `waitMs` retries until then.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, opts: { waitMs?: number } = {}): Promise<T | undefined> {
  const lock = path.join(dir, LOCK_FILE);
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (let stale = 0; stale < 2;) {
    let fh;
    try {
      fh = await fsp.open(lock, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fsp.stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) {
        await fsp.rm(lock, { force: true });
        stale++;
        continue;
      }
      if (Date.now() >= deadline) return undefined;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
      continue;
    }
    try {
      await fh.writeFile(`${process.pid} ${new Date().toISOString()}\n`);
      await fh.close();
      return await fn();
    } finally {
      await fsp.rm(lock, { force: true });
    }
  }
  return undefined;
}

/** Writes `text` to `file` through a temporary file and a rename (readers never see half of it). */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, file);
}

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
