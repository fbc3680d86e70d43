/**
 * The cost ledger: one JSON line per proxied request in `dir/ledger.jsonl`, rotated by size into
 * `ledger.1.jsonl` (newest rotated) … `ledger.N.jsonl` (oldest kept).
 *
 * - Never blocks the event loop: async fs only; `append` only queues, a writer drains the queue
 *   with one `appendFile` per batch, in order.
 * - Never throws to the caller of `append`; write failures are logged and the affected lines dropped.
 * - Reads and writes are serialised through one internal lock, so a read never sees a half-done rotation.
 * - Crash tolerant: unparsable lines (a torn last line) are skipped on read, and the writer checks the
 *   file's last byte before its first write (and whenever the file changed behind its back) so a new line
 *   never gets glued to a torn one.
 * - Holds no prompt or response text: only the fields of `LedgerEntry` are written (`error` is truncated).
 *
 * Days in `LedgerSummary.byDay` are **local** calendar days of the machine running the proxy
 * (what a user means by "today"); see `localDay`.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from './log';
import { silentLogger } from './log';

export type LedgerStatus = 'ok' | 'error' | 'aborted' | 'paused' | 'refused' | 'rate_limited';

export interface LedgerEntry {
  /** ISO 8601 timestamp. */
  time: string;
  id: string;
  model: string;
  /** 'chat' | 'responses' | 'messages' | 'lm' */
  endpoint: string;
  stream: boolean;
  status: LedgerStatus;
  httpStatus: number;
  tokensIn: number;
  tokensOut: number;
  points: number | null;
  pointsEstimated: boolean;
  balanceAfter: number | null;
  durationMs: number;
  clipped: boolean;
  retries: number;
  client: string;
  error?: string;
  /** The points_history entry the actual points came from (never given to another request). */
  queryId?: string;
  /** Set when a correction replaced the estimate: the estimated points it replaced (`points` is now actual). */
  replacedEstimate?: number;
}

/**
 * A later record that replaces an entry's estimated points with the actual ones from points_history.
 * Appended (the ledger stays append-only) and applied when the ledger is read; keyed by the entry's
 * request id and time. Readers that predate it skip the line (it has no `model`).
 */
export interface LedgerCorrection {
  /** `id` of the corrected entry. */
  id: string;
  /** `time` of the corrected entry. */
  time: string;
  /** Actual points. */
  points: number;
  /** The estimate it replaces. */
  estimate: number;
  queryId: string;
  /** ISO time the correction was made. */
  at: string;
}

export interface LedgerReadOptions {
  /** Entries at or after this instant. */
  since?: Date;
  /** Entries strictly before this instant. */
  until?: Date;
  /** Exact model name (case-sensitive). */
  model?: string;
  /** Only the newest `limit` entries (still returned oldest first). */
  limit?: number;
}

export type LedgerQueryOptions = Omit<LedgerReadOptions, 'limit'>;

export interface LedgerTotals {
  requests: number;
  /** All points, measured and estimated (`null` counts as 0). */
  points: number;
  tokensIn: number;
  tokensOut: number;
  /** The part of `points` that came from estimates (`pointsEstimated: true`). */
  estimatedPoints: number;
}

export interface LedgerDay {
  /** Local calendar day, `YYYY-MM-DD`. */
  day: string;
  requests: number;
  points: number;
  tokensIn: number;
  tokensOut: number;
}

export interface LedgerModel {
  model: string;
  requests: number;
  points: number;
  tokensIn: number;
  tokensOut: number;
}

export interface LedgerClient {
  client: string;
  requests: number;
  points: number;
  tokensIn: number;
  tokensOut: number;
}

export interface LedgerSummary {
  totals: LedgerTotals;
  /** Descending by points, then by requests, then by name. */
  byClient: LedgerClient[];
  /** Ascending by day. */
  byDay: LedgerDay[];
  /** Descending by points, then by requests, then by name. */
  byModel: LedgerModel[];
}

export interface LedgerOptions {
  dir: string;
  /** Size that triggers rotation; a file never grows past it except for a single oversized line. 0 = never rotate. */
  maxBytes: number;
  /** Rotated files kept besides `ledger.jsonl`; 0 = the full file is simply truncated. */
  keepFiles: number;
  logger?: Logger;
}

export interface Disposable {
  dispose(): void;
}

export const LEDGER_FILE = 'ledger.jsonl';
const ROTATED = /^ledger\.([1-9]\d*)\.jsonl$/;
const MAX_ERROR_CHARS = 500;

interface Pending {
  entry?: LedgerEntry;
  correction?: LedgerCorrection;
  line: string;
  bytes: number;
}

const CORRECTION = 'correction';

/** `YYYY-MM-DD` of the local calendar day of `date`. */
export function localDay(date: Date): string {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

export class Ledger {
  private readonly dir: string;
  private readonly file: string;
  private readonly maxBytes: number;
  private readonly keepFiles: number;
  private readonly logger: Logger;
  private pending: Pending[] = [];
  private drainQueued = false;
  private lock: Promise<unknown> = Promise.resolve();
  private dirReady = false;
  /** Size of ledger.jsonl after our last write; undefined = unknown (check the last byte again). */
  private knownSize: number | undefined;
  private readonly listeners = new Set<(e: LedgerEntry) => void>();
  private readonly correctionListeners = new Set<(c: LedgerCorrection) => void>();

  constructor(opts: LedgerOptions) {
    this.dir = opts.dir;
    this.file = path.join(opts.dir, LEDGER_FILE);
    this.maxBytes = Number.isFinite(opts.maxBytes) && opts.maxBytes > 0 ? Math.floor(opts.maxBytes) : 0;
    this.keepFiles = Number.isFinite(opts.keepFiles) && opts.keepFiles > 0 ? Math.floor(opts.keepFiles) : 0;
    this.logger = opts.logger ?? silentLogger;
  }

  /** Path of the live ledger file. */
  get path(): string {
    return this.file;
  }

  /** Queues one entry; returns at once and never throws. */
  append(e: LedgerEntry): void {
    try {
      const entry = sanitize(e);
      this.queue({ entry, ...lineOf(entry) });
    } catch (err) {
      this.logger.error(`ledger: could not queue entry: ${describe(err)}`);
    }
  }

  private queue(p: Pending): void {
    this.pending.push(p);
    if (!this.drainQueued) {
      this.drainQueued = true;
      void this.exclusive(() => this.drain());
    }
  }

  /** Queues a correction of an entry's estimated points (see `LedgerCorrection`); returns at once and never throws. */
  appendCorrection(c: LedgerCorrection): void {
    try {
      const correction: LedgerCorrection = { id: String(c.id), time: String(c.time), points: Number(c.points), estimate: Number(c.estimate), queryId: String(c.queryId), at: String(c.at) };
      this.queue({ correction, ...lineOf({ type: CORRECTION, ...correction }) });
    } catch (err) {
      this.logger.error(`ledger: could not queue correction: ${describe(err)}`);
    }
  }

  /** Fires after a correction's write was attempted. */
  onDidCorrect(listener: (c: LedgerCorrection) => void): Disposable {
    this.correctionListeners.add(listener);
    return { dispose: () => void this.correctionListeners.delete(listener) };
  }

  /** Resolves once every entry appended before this call is on disk (or was dropped after an error). */
  flush(): Promise<void> {
    return this.exclusive(async () => undefined);
  }

  /** Entries oldest first, across rotated files; unparsable lines are skipped. Never rejects (logs and returns what it could read). */
  read(opts: LedgerReadOptions = {}): Promise<LedgerEntry[]> {
    return this.exclusive(() => this.readUnlocked(opts));
  }

  async query(opts: LedgerQueryOptions = {}): Promise<LedgerSummary> {
    return summarize(await this.read({ since: opts.since, until: opts.until, model: opts.model }));
  }

  /** Fires after an entry's write was attempted, in append order. */
  onDidAppend(listener: (e: LedgerEntry) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  }

  // ---- internals -------------------------------------------------------------------------------

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async drain(): Promise<void> {
    this.drainQueued = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      await this.writeBatch(batch);
    } catch (err) {
      this.knownSize = undefined;
      this.logger.error(`ledger: could not write ${batch.length} entr${batch.length === 1 ? 'y' : 'ies'} to ${this.file}: ${describe(err)}`);
    }
    for (const p of batch) {
      if (p.entry) this.emit(p.entry);
      if (p.correction) this.emitCorrection(p.correction);
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    if (!this.dirReady) {
      await fsp.mkdir(this.dir, { recursive: true });
      this.dirReady = true;
    }
    let i = 0;
    while (i < batch.length) {
      const { size, needsNewline } = await this.fileState();
      const prefix = needsNewline ? '\n' : '';
      let total = size + prefix.length;
      if (this.maxBytes > 0 && size > 0 && total + batch[i].bytes > this.maxBytes) {
        await this.rotate();
        continue;
      }
      let end = i;
      while (end < batch.length && (end === i || this.maxBytes === 0 || total + batch[end].bytes <= this.maxBytes)) {
        total += batch[end].bytes;
        end++;
      }
      const chunk = prefix + batch.slice(i, end).map((p) => p.line).join('');
      await this.appendWithRetry(chunk);
      this.knownSize = total;
      i = end;
    }
  }

  private async appendWithRetry(chunk: string): Promise<void> {
    try {
      await fsp.appendFile(this.file, chunk, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // The directory vanished under us: recreate it once.
      await fsp.mkdir(this.dir, { recursive: true });
      await fsp.appendFile(this.file, chunk, 'utf8');
    }
  }

  /** Current size of ledger.jsonl and whether its last byte is not a newline (torn line). */
  private async fileState(): Promise<{ size: number; needsNewline: boolean }> {
    let size: number;
    try {
      size = (await fsp.stat(this.file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.knownSize = 0;
      return { size: 0, needsNewline: false };
    }
    if (size === 0 || size === this.knownSize) return { size, needsNewline: false };
    // First open, or someone else changed the file: look at the last byte.
    const fh = await fsp.open(this.file, 'r');
    try {
      const buf = Buffer.alloc(1);
      const { bytesRead } = await fh.read(buf, 0, 1, size - 1);
      const needsNewline = bytesRead === 1 && buf[0] !== 0x0a;
      if (needsNewline) this.logger.warn(`ledger: ${this.file} ends with an incomplete line (crash?); it will be skipped`);
      return { size, needsNewline };
    } finally {
      await fh.close();
    }
  }

  private async rotate(): Promise<void> {
    const rotated = (n: number): string => path.join(this.dir, `ledger.${n}.jsonl`);
    if (this.keepFiles === 0) {
      await fsp.rm(this.file, { force: true });
    } else {
      // Only touch files that exist: highest index first, dropping those that would pass keepFiles.
      const existing = (await fsp.readdir(this.dir))
        .map((n) => ROTATED.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => b - a);
      for (const n of existing) {
        if (n >= this.keepFiles) await fsp.rm(rotated(n), { force: true });
        else await renameIfExists(rotated(n), rotated(n + 1));
      }
      await renameIfExists(this.file, rotated(1));
    }
    this.knownSize = 0;
    this.logger.info(`ledger: rotated ${this.file}`);
  }

  private async readUnlocked(opts: LedgerReadOptions): Promise<LedgerEntry[]> {
    const since = opts.since ? opts.since.getTime() : -Infinity;
    const until = opts.until ? opts.until.getTime() : Infinity;
    const limit = opts.limit !== undefined && opts.limit >= 0 ? Math.floor(opts.limit) : Infinity;
    if (limit === 0) return [];
    const keep = (e: LedgerEntry): boolean => {
      if (opts.model !== undefined && e.model !== opts.model) return false;
      if (since === -Infinity && until === Infinity) return true;
      const t = Date.parse(e.time);
      return Number.isFinite(t) && t >= since && t < until;
    };
    // Newest file first so `limit` can stop early.
    const files = await this.listFilesNewestFirst();
    const chunks: LedgerEntry[][] = [];
    const corrections = new Map<string, LedgerCorrection>();
    let count = 0;
    for (const f of files) {
      let text: string;
      try {
        text = await fsp.readFile(f, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn(`ledger: could not read ${f}: ${describe(err)}`);
        continue;
      }
      // A correction is never in an older file than its entry, so every read entry meets its correction.
      const entries = parseLedgerText(text, corrections).filter(keep);
      chunks.unshift(entries);
      count += entries.length;
      if (count >= limit) break;
    }
    const all = applyCorrections(chunks.flat(), corrections);
    return all.length > limit ? all.slice(all.length - limit) : all;
  }

  private async listFilesNewestFirst(): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn(`ledger: could not list ${this.dir}: ${describe(err)}`);
      return [];
    }
    const rotated = names
      .map((n) => ({ n, m: ROTATED.exec(n) }))
      .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
      .map((x) => ({ name: x.n, index: Number(x.m[1]) }))
      .sort((a, b) => a.index - b.index)
      .map((x) => path.join(this.dir, x.name));
    return [...(names.includes(LEDGER_FILE) ? [this.file] : []), ...rotated];
  }

  private emitCorrection(c: LedgerCorrection): void {
    for (const l of [...this.correctionListeners]) {
      try {
        l(c);
      } catch (err) {
        this.logger.error(`ledger: onDidCorrect listener threw: ${describe(err)}`);
      }
    }
  }

  private emit(e: LedgerEntry): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.logger.error(`ledger: onDidAppend listener threw: ${describe(err)}`);
      }
    }
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const num = (v: unknown, dflt = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : dflt);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, dflt = ''): string => (typeof v === 'string' ? v : dflt);
const STATUSES: readonly LedgerStatus[] = ['ok', 'error', 'aborted', 'paused', 'refused', 'rate_limited'];

/** Copies only the known fields, so nothing else (prompt text) can ever reach the file. */
function sanitize(e: LedgerEntry): LedgerEntry {
  return normalize(e as unknown as Record<string, unknown>, true);
}

function normalize(r: Record<string, unknown>, truncate: boolean): LedgerEntry {
  const out: LedgerEntry = {
    time: str(r.time),
    id: str(r.id),
    model: str(r.model),
    endpoint: str(r.endpoint),
    stream: r.stream === true,
    status: STATUSES.includes(r.status as LedgerStatus) ? (r.status as LedgerStatus) : 'error',
    httpStatus: num(r.httpStatus),
    tokensIn: num(r.tokensIn),
    tokensOut: num(r.tokensOut),
    points: numOrNull(r.points),
    pointsEstimated: r.pointsEstimated === true,
    balanceAfter: numOrNull(r.balanceAfter),
    durationMs: num(r.durationMs),
    clipped: r.clipped === true,
    retries: num(r.retries),
    client: str(r.client),
  };
  if (typeof r.error === 'string') {
    out.error = truncate && r.error.length > MAX_ERROR_CHARS ? `${r.error.slice(0, MAX_ERROR_CHARS)}…` : r.error;
  }
  if (typeof r.queryId === 'string' && r.queryId) out.queryId = r.queryId.slice(0, 128);
  return out;
}

function lineOf(record: object): { line: string; bytes: number } {
  const line = `${JSON.stringify(record)}\n`;
  return { line, bytes: Buffer.byteLength(line, 'utf8') };
}

function correctionKey(id: string, time: string): string {
  return `${id}\u0000${time}`;
}

function parseCorrection(r: Record<string, unknown>): LedgerCorrection | undefined {
  const points = numOrNull(r.points);
  if (typeof r.id !== 'string' || !r.id || typeof r.time !== 'string' || points === null || points < 0) return undefined;
  return { id: r.id, time: r.time, points, estimate: num(r.estimate), queryId: str(r.queryId), at: str(r.at) };
}

/** Entries with their corrections applied: actual points, `replacedEstimate` saying what they replaced. */
export function applyCorrections(entries: LedgerEntry[], corrections: ReadonlyMap<string, LedgerCorrection>): LedgerEntry[] {
  if (corrections.size === 0) return entries;
  return entries.map((e) => {
    const c = corrections.get(correctionKey(e.id, e.time));
    if (!c || !e.pointsEstimated) return e;
    return { ...e, points: c.points, pointsEstimated: false, replacedEstimate: e.points ?? c.estimate, ...(c.queryId ? { queryId: c.queryId } : {}) };
  });
}

/**
 * Parses JSONL text, skipping blank, torn or foreign lines. Correction records go into `corrections`
 * when given (the first one for an entry wins: an entry is corrected once), else are skipped.
 */
export function parseLedgerText(text: string, corrections?: Map<string, LedgerCorrection>): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(trimmed);
    } catch {
      continue;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) continue;
    const r = raw as Record<string, unknown>;
    if (r.type === CORRECTION) {
      const c = corrections && parseCorrection(r);
      const key = c && correctionKey(c.id, c.time);
      if (c && key && !corrections.has(key)) corrections.set(key, c);
      continue;
    }
    if (typeof r.time !== 'string' || typeof r.model !== 'string') continue;
    out.push(normalize(r, false));
  }
  return out;
}

/** Totals by day (local time) and by model. */
export function summarize(entries: readonly LedgerEntry[]): LedgerSummary {
  const totals: LedgerTotals = { requests: 0, points: 0, tokensIn: 0, tokensOut: 0, estimatedPoints: 0 };
  const days = new Map<string, LedgerDay>();
  const models = new Map<string, LedgerModel>();
  const clients = new Map<string, LedgerClient>();
  for (const e of entries) {
    const points = e.points ?? 0;
    totals.requests++;
    totals.points += points;
    totals.tokensIn += e.tokensIn;
    totals.tokensOut += e.tokensOut;
    if (e.pointsEstimated) totals.estimatedPoints += points;
    const t = new Date(e.time);
    if (!Number.isNaN(t.getTime())) {
      const day = localDay(t);
      let d = days.get(day);
      if (!d) days.set(day, (d = { day, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }));
      d.requests++;
      d.points += points;
      d.tokensIn += e.tokensIn;
      d.tokensOut += e.tokensOut;
    }
    let m = models.get(e.model);
    if (!m) models.set(e.model, (m = { model: e.model, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }));
    m.requests++;
    m.points += points;
    m.tokensIn += e.tokensIn;
    m.tokensOut += e.tokensOut;
    let c = clients.get(e.client);
    if (!c) clients.set(e.client, (c = { client: e.client, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }));
    c.requests++;
    c.points += points;
    c.tokensIn += e.tokensIn;
    c.tokensOut += e.tokensOut;
  }
  return {
    totals,
    byClient: [...clients.values()].sort(
      (a, b) => b.points - a.points || b.requests - a.requests || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0),
    ),
    byDay: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0)),
    byModel: [...models.values()].sort(
      (a, b) => b.points - a.points || b.requests - a.requests || (a.model < b.model ? -1 : a.model > b.model ? 1 : 0),
    ),
  };
}

export const CSV_COLUMNS: ReadonlyArray<keyof LedgerEntry> = [
  'time',
  'id',
  'model',
  'endpoint',
  'stream',
  'status',
  'httpStatus',
  'tokensIn',
  'tokensOut',
  'points',
  'pointsEstimated',
  'balanceAfter',
  'durationMs',
  'clipped',
  'retries',
  'client',
  'replacedEstimate',
  'error',
];

/**
 * RFC 4180 CSV (CRLF line ends, header row). A field is quoted when it holds a comma, semicolon, quote,
 * CR or LF (spreadsheets in many locales split on `;`); quotes are doubled. Text that a spreadsheet
 * would run as a formula (OWASP: starting with = + - @ tab CR, here also LF and after leading spaces)
 * gets a leading apostrophe. `null`/missing values are empty fields.
 */
export function toCsv(entries: readonly LedgerEntry[]): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const e of entries) rows.push(CSV_COLUMNS.map((c) => csvField(e[c])).join(','));
  return `${rows.join('\r\n')}\r\n`;
}

const FORMULA_START = /^[ \u00a0]*[=+\-@\t\r\n\uff1d\uff0b\uff0d\uff20]/;

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (typeof v === 'string') {
    s = FORMULA_START.test(v) ? `'${v}` : v;
  } else {
    s = String(v);
  }
  return /[",;\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
