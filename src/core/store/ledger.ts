/**
 * The cost ledger: one JSON line per request that reached Poe, one summary line per minute, client
 * and reason for requests refused before anything was sent, in one file per month (see
 * ledgerFiles.ts for the layout).
 *
 * - Retention by time: closed months are gzipped; a month is deleted only once it is older than
 *   `retentionMonths` (0 = never). Volume never deletes anything.
 * - Several writers (VS Code windows, a headless proxy) share a directory: every process appends
 *   whole lines with O_APPEND (ledgerFiles.appendLines); migration, compression and deletion run
 *   under a lock file, and a compression is journalled so a crash never loses or doubles a month.
 * - Never blocks the event loop and never throws to the caller of `append`/`countRefused`.
 * - Nothing is read at construction: maintenance and the index start at the first append or read.
 * - Corruption never loses the rest: files are streamed line by line with a bound on line length;
 *   a bad line is skipped with one warning naming the file and line.
 * - Holds no prompt or response text: only the fields of `LedgerEntry` are written.
 */
import { once } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import {
  addMonths,
  appendLines,
  classify,
  gzName,
  INDEX_DIR,
  isMissing,
  journalName,
  LedgerFile,
  liveName,
  migratedName,
  MIGRATION_JOURNAL,
  monthOf,
  monthOfTime,
  LineRange,
  LineSink,
  scanLines,
  scanLinesBackward,
  sortFiles,
  withDirLock,
  writeFileAtomic,
} from './ledgerFiles';
import { orderKey, Piece, PIECE_LINES, pieceMatches, piecesFromJSON, piecesToJSON, PieceText, PieceWriter, readPiece, TIME_PREFIX } from './ledgerPieces';
import { Block, blockCorrects, blockMatches, BlockGrower, blocksEnd, blocksFromJSON, blocksToJSON, blockSpans, CORRECTION_START } from './ledgerBlocks';
import {
  dayOfTime,
  entryPasses,
  FileSummary,
  IndexRow,
  LedgerFilter,
  LedgerSummary,
  NO_FILTER,
  passes,
  RefusedGroup,
  refusedGroups,
  summarizeRows,
} from './ledgerIndex';
import {
  applyCorrection,
  applyCorrections,
  correctionKey,
  correctionLine,
  LedgerCorrection,
  LedgerEntry,
  parseRecord,
  RefusedReason,
  RefusedSummary,
  refusedReason,
  sanitize,
} from './ledgerRecords';
import type { Logger } from '../log';
import { describeError as describe, notifyAll } from '../listeners';
import { silentLogger } from '../log';

export * from './ledgerRecords';
export * from './ledgerIndex';

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

export interface LedgerOptions {
  dir: string;
  /** Months kept before the current one; older months are deleted. 0 = keep forever. Default 13. */
  retentionMonths?: number;
  logger?: Logger;
  /** Clock (tests). */
  now?: () => number;
  /** How often counted refusals are written (they are also written by `flush`). Default 60 s. */
  refusedFlushMs?: number;
  /** A month is compressed this long after it ended (late writers still append to it). Default 1 h. */
  closeGraceMs?: number;
  /** A pause before each file of the background count (see `Ledger.view`): e2e tests keep the partial state on screen with it. Default 0. */
  countPauseMs?: number;
}

export interface Disposable {
  dispose(): void;
}

export interface LedgerPage {
  /** Oldest first. */
  entries: LedgerEntry[];
  /** Older matching entries exist before `entries`. */
  hasMore: boolean;
}

/** Months whose totals are still being counted in the background (see `Ledger.view`). */
export interface LedgerIndexing {
  /** Months (`YYYY-MM`; '' for a file of no month) not counted yet, newest first. */
  months: string[];
  /** Months in this round of counting, the counted ones included ("3 of 11 left"). */
  total: number;
}

/** Totals, models, clients and refusals: what the history view shows besides its rows. */
export interface LedgerOverview {
  summary: LedgerSummary;
  /** Every model in the ledger, sorted. */
  models: string[];
  /** Every client in the ledger, sorted. */
  clients: string[];
  /** Refusals within the filter's days, newest first (at most MAX_REFUSED_GROUPS). */
  refused: RefusedGroup[];
  /** All refused requests within the filter's days. */
  refusedTotal: number;
  /**
   * Present while some months are not counted yet: the totals, models, clients and refusals then
   * leave those months out (partial). `onDidIndex` fires as they are counted. Rows are exact either way.
   */
  pending?: LedgerIndexing;
}

export interface LedgerView extends LedgerPage, LedgerOverview {}

export interface EntryCursor {
  time: string;
  id: string;
}

export const DEFAULT_RETENTION_MONTHS = 13;
const MAX_REFUSED_GROUPS = 200;
/** Bad lines named one by one per file before the rest are only counted. */
const MAX_WARNINGS_PER_FILE = 5;
const INDEX_VERSION = 1;
/** How long a write to a past month waits for a compression in another process to finish. */
const LATE_WRITE_LOCK_WAIT_MS = 60_000;
/** Pieces of a closed month read at once (the thread pool decompresses them in parallel). */
const PIECES_AHEAD = 4;
/** Longer than any request takes: entries are appended when a request ends, at most this much after its `time`. */
const MAX_REQUEST_MS = 3_600_000;
/** How long maintenance waits for the lock before leaving the work to its holder. */
const MAINTENANCE_LOCK_WAIT_MS = 2_000;
/**
 * Lines are written at most this long after the first of a batch was queued: under load one append (one
 * open of the month file) serves every request that finished meanwhile, instead of one per request.
 */
const WRITE_BATCH_MS = 20;

interface FileIndex {
  v: number;
  tz: string;
  name: string;
  ino: number;
  /** Bytes read: the whole file for immutable files, up to the last complete line for the live one. */
  size: number;
  mtimeMs: number;
  lines: number;
  summary: FileSummary;
  /** A closed month written in pieces (see ledgerPieces.ts); absent for an old single-member .gz and for plain files. */
  pieces?: Piece[];
  /** The live file's blocks up to `size` (see ledgerBlocks.ts). */
  blocks?: Block[];
}

/** Refusals of one minute, client and reason not written yet. */
interface RefusedBucket {
  minute: number;
  client: string;
  reason: RefusedReason;
  count: number;
  from: number;
  to: number;
}

interface PendingLine {
  month: string;
  line: string;
  entry?: LedgerEntry;
  correction?: LedgerCorrection;
}

export class Ledger {
  readonly dir: string;
  private retentionMonths: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly refusedFlushMs: number;
  private readonly closeGraceMs: number;
  private readonly countPauseMs: number;
  private pending: PendingLine[] = [];
  private drainQueued = false;
  /** Waits WRITE_BATCH_MS after the first queued line, so one append serves every line queued meanwhile. */
  private batchTimer: NodeJS.Timeout | undefined;
  private writeLock: Promise<unknown> = Promise.resolve();
  private readonly refused = new Map<string, RefusedBucket>();
  private refusedTimer: NodeJS.Timeout | undefined;
  private maintenance: Promise<void> | undefined;
  /** Old single-piece months being rewritten in pieces (readers never wait for it). */
  private repiecing: Promise<void> = Promise.resolve();
  /** The index build in progress (`indexAll`), which a rewrite in pieces lets finish first. */
  private reading: Promise<unknown> = Promise.resolve();
  /** Old months that could not be read to their end: left as they are. */
  private readonly unpieceable = new Set<string>();
  private maintainedMonth = '';
  private readonly indexes = new Map<string, FileIndex>();
  private readonly warned = new Map<string, number>();
  private readonly listeners = new Set<(e: LedgerEntry) => void>();
  private readonly correctionListeners = new Set<(c: LedgerCorrection) => void>();
  /** Index builds in progress per file: one at a time per file, so lines are never counted twice. */
  private readonly building = new Map<string, Promise<unknown>>();
  /** The background count of files that need a whole read (see `readyIndexes`); undefined when idle. */
  private counting: Promise<void> | undefined;
  /** Files waiting for the background count, by name. */
  private readonly toCount = new Map<string, LedgerFile>();
  /** Months of the current round of background counting (counted ones included). */
  private readonly countRound = new Set<string>();
  private stopCounting = false;
  private readonly indexListeners = new Set<(p: LedgerIndexing) => void>();

  constructor(opts: LedgerOptions) {
    this.dir = opts.dir;
    this.retentionMonths = 0;
    this.setRetentionMonths(opts.retentionMonths ?? DEFAULT_RETENTION_MONTHS);
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.refusedFlushMs = opts.refusedFlushMs ?? 60_000;
    this.closeGraceMs = opts.closeGraceMs ?? 3_600_000;
    this.countPauseMs = opts.countPauseMs ?? 0;
  }

  /** Changes the retention (a setting changed); the next maintenance applies it. */
  setRetentionMonths(months: number): void {
    this.retentionMonths = Number.isFinite(months) && months > 0 ? Math.floor(months) : 0;
    this.maintainedMonth = '';
  }

  /** Path of the live file of the current month. */
  get path(): string {
    return path.join(this.dir, liveName(monthOf(new Date(this.now()))));
  }

  // ---- writing ---------------------------------------------------------------------------------

  /** Queues one entry of a request that reached Poe; returns at once and never throws. */
  append(e: LedgerEntry): void {
    try {
      const entry = sanitize(e);
      this.queue({ month: monthOfTime(entry.time) ?? monthOf(new Date(this.now())), line: `${JSON.stringify(entry)}\n`, entry });
    } catch (err) {
      this.logger.error(`ledger: could not queue entry: ${describe(err)}`);
    }
  }

  /**
   * Queues a correction of an entry's estimated points (see `LedgerCorrection`), into the month file
   * of the entry's time; returns at once and never throws.
   */
  appendCorrection(c: LedgerCorrection): void {
    try {
      const line = correctionLine(c);
      const correction = JSON.parse(line) as LedgerCorrection & { type?: string };
      delete correction.type;
      this.queue({ month: monthOfTime(correction.time) ?? monthOf(new Date(this.now())), line, correction });
    } catch (err) {
      this.logger.error(`ledger: could not queue correction: ${describe(err)}`);
    }
  }

  /** Fires after a correction's write was attempted. */
  onDidCorrect(listener: (c: LedgerCorrection) => void): Disposable {
    this.correctionListeners.add(listener);
    return { dispose: () => void this.correctionListeners.delete(listener) };
  }

  /**
   * Counts a request answered without anything sent to Poe: one summary line per minute, client and
   * reason is written when the minute is over (or at `flush`). Never throws.
   */
  countRefused(r: { time?: string; client: string; reason: RefusedReason }): void {
    const t = (r.time ? Date.parse(r.time) : NaN) || this.now();
    const minute = Math.floor(t / 60_000);
    const key = `${minute}\u0000${r.client}\u0000${r.reason}`;
    const b = this.refused.get(key);
    if (b) {
      b.count++;
      b.from = Math.min(b.from, t);
      b.to = Math.max(b.to, t);
    } else {
      this.refused.set(key, { minute, client: r.client, reason: r.reason, count: 1, from: t, to: t });
    }
    if (!this.refusedTimer) {
      this.refusedTimer = setInterval(() => this.writeRefused(false), this.refusedFlushMs);
      this.refusedTimer.unref();
    }
  }

  /** `countRefused` for an entry of a request that never reached Poe. */
  countRefusedEntry(e: LedgerEntry): void {
    this.countRefused({ time: e.time, client: e.client, reason: refusedReason(e) });
  }

  /** Resolves once everything appended or counted before this call is on disk (or was dropped after an error). */
  async flush(): Promise<void> {
    this.writeRefused(true);
    await this.flushWrites();
    await this.maintenance;
    await this.repiecing;
  }

  /** Flushes and stops the timers and the background count (shutdown; the next read resumes the count). */
  async close(): Promise<void> {
    this.stopCounting = true;
    await this.counting;
    this.stopCounting = false;
    await this.flush();
    if (this.refusedTimer) clearInterval(this.refusedTimer);
    this.refusedTimer = undefined;
  }

  /**
   * Fires each time the background count (see `view`) has counted a file, with the months still left;
   * `months` is empty once every month is counted (totals read then are exact).
   */
  onDidIndex(listener: (p: LedgerIndexing) => void): Disposable {
    this.indexListeners.add(listener);
    return { dispose: () => void this.indexListeners.delete(listener) };
  }

  /** Fires after an entry's write was attempted, in append order. */
  onDidAppend(listener: (e: LedgerEntry) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  }

  /** This process's refusals of the current minute, not written yet (so the history shows a flood at once). */
  private unwrittenRefusals(): RefusedGroup[] {
    return [...this.refused.values()].map((b) => {
      const from = new Date(b.from).toISOString();
      return { day: dayOfTime(from), client: b.client, reason: b.reason, count: b.count, from, to: new Date(b.to).toISOString() };
    });
  }

  private writeRefused(all: boolean): void {
    const current = Math.floor(this.now() / 60_000);
    for (const [key, b] of this.refused) {
      if (!all && b.minute >= current) continue;
      this.refused.delete(key);
      const from = new Date(b.from).toISOString();
      const rec: RefusedSummary = { kind: 'refused', time: from, from, to: new Date(b.to).toISOString(), count: b.count, reason: b.reason, client: b.client };
      this.queue({ month: monthOf(new Date(b.from)), line: `${JSON.stringify(rec)}\n` });
    }
    if (this.refused.size === 0 && this.refusedTimer) {
      clearInterval(this.refusedTimer);
      this.refusedTimer = undefined;
    }
  }

  private queue(p: PendingLine): void {
    this.pending.push(p);
    if (!this.drainQueued) {
      this.drainQueued = true;
      this.batchTimer = setTimeout(() => this.startDrain(), WRITE_BATCH_MS);
    }
  }

  private startDrain(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    void this.exclusive(() => this.drain());
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writeLock.then(fn, fn);
    this.writeLock = run.then(
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
    const byMonth = new Map<string, PendingLine[]>();
    for (const p of batch) {
      let list = byMonth.get(p.month);
      if (!list) byMonth.set(p.month, (list = []));
      list.push(p);
    }
    const current = monthOf(new Date(this.now()));
    for (const [month, lines] of byMonth) {
      const file = path.join(this.dir, liveName(month));
      try {
        const write = (): Promise<void> =>
          this.appendToFile(
            file,
            lines.map((p) => p.line),
          );
        if (month === current) {
          await write();
        } else {
          // A past month may be being compressed by another process: append under the lock, so no
          // line lands in a file after it was read. (Rare: late entries and refusals at a month's end.)
          const done = await withDirLock(this.dir, async () => (await write(), true), { waitMs: LATE_WRITE_LOCK_WAIT_MS }).catch(() => undefined);
          if (!done) await write();
        }
      } catch (err) {
        this.logger.error(`ledger: could not write ${lines.length} line${lines.length === 1 ? '' : 's'} to ${file}: ${describe(err)}`);
      }
    }
    // After the writes: a maintenance started before them could list the files between two months'
    // writes and leave the second month uncompressed until the next month.
    this.scheduleMaintenance();
    for (const p of batch) {
      if (p.entry) this.emit(p.entry);
      if (p.correction) this.emitCorrection(p.correction);
    }
  }

  private async appendToFile(file: string, lines: string[]): Promise<void> {
    let written: { mendedTorn: boolean };
    try {
      written = await appendLines(file, lines);
    } catch (err) {
      if (!isMissing(err)) throw err;
      await fsp.mkdir(this.dir, { recursive: true });
      written = await appendLines(file, lines);
    }
    if (written.mendedTorn) this.logger.warn(`ledger: ${file} ends with an incomplete line (crash?); it will be skipped`);
  }

  private emitCorrection(c: LedgerCorrection): void {
    notifyAll(this.correctionListeners, c, this.logger, 'ledger: onDidCorrect');
  }

  private emit(e: LedgerEntry): void {
    notifyAll(this.listeners, e, this.logger, 'ledger: onDidAppend');
  }

  // ---- maintenance: migration, compression, retention -----------------------------------------

  private scheduleMaintenance(): Promise<void> {
    const month = monthOf(new Date(this.now()));
    if (this.maintenance && this.maintainedMonth === month) return this.maintenance;
    this.maintainedMonth = month;
    const run = (this.maintenance ?? Promise.resolve()).then(() => this.maintain());
    this.maintenance = run.catch((err) => this.logger.warn(`ledger: maintenance failed: ${describe(err)}`));
    // Readers wait for the maintenance, never for the rewrite of old months in pieces that follows it.
    const maintained = this.maintenance;
    this.repiecing = this.repiecing
      .then(() => maintained)
      .then(() => this.repieceOldMonths())
      .catch((err) => this.logger.warn(`ledger: rewriting old months in pieces failed: ${describe(err)}`));
    return this.maintenance;
  }

  /**
   * Moves old size-rotated files into month files, compresses closed months and deletes months past
   * retention, holding the directory lock (skipped when another process holds it). Never rejects.
   */
  async maintain(): Promise<void> {
    try {
      // Waits a little: the holder may only be appending a late line; if it is compressing, the
      // work is being done anyway.
      await withDirLock(
        this.dir,
        async () => {
          await this.migrateLegacy();
          await this.recoverCompressions();
          const current = monthOf(new Date(this.now()));
          const files = await this.listFiles();
          const cutoff = this.retentionMonths > 0 ? addMonths(current, -this.retentionMonths) : '';
          const months = [...new Set(files.map((f) => f.month).filter((m) => m))];
          for (const month of months) {
            if (cutoff && month < cutoff) {
              await this.deleteMonth(month, files);
              continue;
            }
            const closedAt = Date.parse(`${addMonths(month, 1)}-01T00:00:00Z`) + this.closeGraceMs;
            if (month < current && this.now() >= closedAt && files.some((f) => f.month === month && f.kind !== 'gz')) await this.compressMonth(month);
          }
        },
        { waitMs: MAINTENANCE_LOCK_WAIT_MS },
      );
    } catch (err) {
      if (!isMissing(err)) this.logger.warn(`ledger: maintenance of ${this.dir} failed: ${describe(err)}`);
    }
  }

  private async deleteMonth(month: string, files: LedgerFile[]): Promise<void> {
    for (const f of files.filter((x) => x.month === month)) {
      await fsp.rm(path.join(this.dir, f.name), { force: true });
      await fsp.rm(this.indexPath(f.name), { force: true });
    }
    this.logger.info(`ledger: deleted ${month} (older than ${this.retentionMonths} months)`);
  }

  /** Rewrites the old `ledger.jsonl`/`ledger.N.jsonl` into `ledger-YYYY-MM.migrated.jsonl`, idempotently. */
  private async migrateLegacy(): Promise<void> {
    const names = await this.readdir();
    const legacy = sortFiles(names.map(classify).filter((f): f is LedgerFile => f?.kind === 'legacy'));
    const journal = path.join(this.dir, MIGRATION_JOURNAL);
    if (!names.includes(MIGRATION_JOURNAL)) {
      if (legacy.length === 0) return;
      // Rebuilt from all old files each time until the journal says it is complete, so a crash
      // half-way only means doing it again.
      const byMonth = new Map<string, string[]>();
      for (const f of legacy) {
        await this.scanFile(f, (rec, line) => {
          if (rec.kind === 'bad') return;
          const time = rec.kind === 'entry' ? rec.entry.time : rec.kind === 'refused' ? rec.refused.from : '';
          const month = monthOfTime(time) ?? monthOf(new Date(this.now()));
          let list = byMonth.get(month);
          if (!list) byMonth.set(month, (list = []));
          list.push(line);
        });
      }
      for (const [month, lines] of byMonth) await writeFileAtomic(path.join(this.dir, migratedName(month)), lines.map((l) => `${l}\n`).join(''));
      await writeFileAtomic(journal, JSON.stringify({ migrated: legacy.map((f) => f.name) }));
      this.logger.info(`ledger: moved ${legacy.map((f) => f.name).join(', ')} into month files`);
    }
    for (const f of legacy) await fsp.rm(path.join(this.dir, f.name), { force: true });
    await fsp.rm(journal, { force: true });
  }

  /** Finishes or undoes compressions a crash interrupted (see `compressMonth`). */
  private async recoverCompressions(): Promise<void> {
    for (const name of await this.readdir()) {
      const m = /^ledger-(\d{4}-\d{2})\.compress\.json$/.exec(name);
      if (!m) continue;
      const journal = await this.readJournal(m[1]);
      if (journal && (await exists(path.join(this.dir, journal.tmp)))) {
        await fsp.rm(path.join(this.dir, journal.tmp), { force: true }); // the new .gz never replaced the old one
      } else if (journal) {
        for (const s of journal.sources) await fsp.rm(path.join(this.dir, s), { force: true });
      }
      await fsp.rm(path.join(this.dir, name), { force: true });
    }
  }

  /**
   * Rewrites the closed months still in one old-format gzip member (from an older version), after each
   * maintenance; readers do not wait for it, they read such a month whole until it is done.
   */
  private async repieceOldMonths(): Promise<void> {
    const current = monthOf(new Date(this.now()));
    const files = await this.listFiles();
    const old: string[] = [];
    for (const f of files) {
      if (f.kind !== 'gz' || f.month >= current || this.unpieceable.has(f.name) || files.some((x) => x.month === f.month && x.kind !== 'gz')) continue;
      if (!(await this.piecesOf(f))) old.push(f.month);
    }
    for (const month of old) {
      await this.reading; // a history view reading the old months (and their count in the background) goes first
      // An index build of the month waits for its rewrite, which writes the index anyway.
      await this.oneAtATime(gzName(month), () =>
        withDirLock(this.dir, () => this.compressMonth(month, { repiece: true }), { waitMs: MAINTENANCE_LOCK_WAIT_MS }),
      ).catch((err) => {
        if (!isMissing(err)) this.logger.warn(`ledger: could not rewrite ${gzName(month)} in pieces: ${describe(err)}`);
      });
    }
  }

  /**
   * Folds a closed month's files into one .gz written in pieces with its index (see ledgerPieces.ts):
   * the live file is first renamed aside (a late writer then starts a new one, read and compressed
   * next time), the new .gz is written beside the old one, a journal names the sources it replaces,
   * then the .gz is renamed into place and the sources deleted. Readers skip journalled sources once
   * the new .gz is in place. `repiece` rewrites a month that is only an old-format .gz.
   */
  private async compressMonth(month: string, opts: { repiece?: boolean } = {}): Promise<void> {
    const live = path.join(this.dir, liveName(month));
    if (!opts.repiece) {
      try {
        await fsp.rename(live, `${live}.${process.pid}.closing`);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    const files = (await this.listFiles()).filter((f) => f.month === month && f.kind !== 'live');
    const sources = files.filter((f) => f.kind === 'migrated' || f.kind === 'closing');
    const oldGz = files.find((f) => f.kind === 'gz');
    if (opts.repiece ? !oldGz || sources.length > 0 || (await this.piecesOf(oldGz)) : sources.length === 0) return;
    const tmp = `${gzName(month)}.${process.pid}.tmp`;
    const fh = await fsp.open(path.join(this.dir, tmp), 'w');
    const writer = new PieceWriter(fh);
    const summary = new FileSummary();
    let pieces: Piece[] | undefined;
    try {
      for (const f of files) {
        // A damaged source keeps what could be read (scanFile warns about the rest, as any reader would).
        const end = await this.scanFile(
          f,
          (rec, text) => {
            if (rec.kind === 'entry') {
              summary.addEntry(rec.entry);
              writer.add(text, { kind: 'entries', model: rec.entry.model, client: rec.entry.client, time: rec.entry.time, id: rec.entry.id });
            } else if (rec.kind === 'refused') {
              summary.addRefused(rec.refused);
              writer.add(text, { kind: 'refused', client: rec.refused.client, time: rec.refused.from });
            } else if (rec.kind === 'correction') {
              summary.addCorrection(rec.correction);
              writer.add(text, { kind: 'corrections', time: rec.correction.time });
            } else if (rec.kind === 'bad') {
              writer.add(text, { kind: 'other' });
            }
          },
          { chunkDone: () => writer.writeFull() },
        );
        // An old month that cannot be read to its end stays as it is (what follows the damage may still be recovered by hand).
        if (opts.repiece && end?.error) {
          this.unpieceable.add(f.name);
          return;
        }
      }
      pieces = await writer.finish();
    } finally {
      await fh.close();
      if (!pieces) await fsp.rm(path.join(this.dir, tmp), { force: true });
    }
    // A closed month keeps no estimates waiting for corrections (a late one is folded in next time).
    summary.pending.clear();
    const lines = pieces.reduce((n, p) => n + p.lines, 0);
    await writeFileAtomic(path.join(this.dir, journalName(month)), JSON.stringify({ tmp, sources: sources.map((s) => s.name) }));
    await fsp.rename(path.join(this.dir, tmp), path.join(this.dir, gzName(month)));
    for (const s of sources) {
      await fsp.rm(path.join(this.dir, s.name), { force: true });
      await fsp.rm(this.indexPath(s.name), { force: true });
    }
    await fsp.rm(path.join(this.dir, journalName(month)), { force: true });
    // The index is written now, so the history view never pays for a closed month.
    const st = await fsp.stat(path.join(this.dir, gzName(month)));
    const index: FileIndex = {
      v: INDEX_VERSION,
      tz: currentTimeZone(),
      name: gzName(month),
      ino: st.ino,
      size: st.size,
      mtimeMs: st.mtimeMs,
      lines,
      summary,
      pieces,
    };
    this.indexes.set(index.name, index);
    await this.saveIndex(index);
    this.logger.info(`ledger: ${opts.repiece ? 'rewrote' : 'compressed'} ${month} into ${gzName(month)} (${pieces.length} pieces)`);
  }

  /** The pieces of a closed month's .gz, when its index has them and still describes the file. */
  private async piecesOf(f: LedgerFile): Promise<Piece[] | undefined> {
    if (f.kind !== 'gz') return undefined;
    const st = await fsp.stat(path.join(this.dir, f.name)).catch(() => undefined);
    if (!st) return undefined;
    // Not the mtime: damage in place is caught by each piece's checksum, and a rewrite is a new file (rename).
    const fits = (i: FileIndex | undefined): i is FileIndex => !!i?.pieces && i.ino === st.ino && i.size === st.size;
    // Not kept in memory when loaded here: maintenance asks about every closed month, and a process that
    // only writes (the proxy) should not hold their indexes.
    let index = this.indexes.get(f.name);
    if (!fits(index)) index = await this.loadIndex(f.name);
    return fits(index) ? index.pieces : undefined;
  }

  private async readJournal(month: string): Promise<{ tmp: string; sources: string[] } | undefined> {
    try {
      const j = JSON.parse(await fsp.readFile(path.join(this.dir, journalName(month)), 'utf8')) as { tmp?: unknown; sources?: unknown };
      if (typeof j.tmp === 'string' && Array.isArray(j.sources) && j.sources.every((s) => typeof s === 'string'))
        return { tmp: j.tmp, sources: j.sources as string[] };
    } catch {
      // missing or half-written journal: nothing was replaced yet
    }
    return undefined;
  }

  // ---- files -------------------------------------------------------------------------------------

  private async readdir(): Promise<string[]> {
    try {
      return await fsp.readdir(this.dir);
    } catch (err) {
      if (!isMissing(err)) this.logger.warn(`ledger: could not list ${this.dir}: ${describe(err)}`);
      return [];
    }
  }

  /** The files holding the ledger, oldest content first, without sources a finished compression or migration replaced. */
  private async listFiles(): Promise<LedgerFile[]> {
    const names = await this.readdir();
    let files = names.map(classify).filter((f): f is LedgerFile => f !== undefined);
    if (names.includes(MIGRATION_JOURNAL)) files = files.filter((f) => f.kind !== 'legacy');
    for (const name of names) {
      const m = /^ledger-(\d{4}-\d{2})\.compress\.json$/.exec(name);
      if (!m) continue;
      const j = await this.readJournal(m[1]);
      if (j && !names.includes(j.tmp)) files = files.filter((f) => !j.sources.includes(f.name));
    }
    return sortFiles(files);
  }

  /**
   * Streams one file's records (with the byte offset after each line, 0 in a pieced month); bad lines
   * are warned about (once per process) and skipped.
   */
  private async scanFile(
    f: LedgerFile,
    onRecord: (rec: ReturnType<typeof parseRecord>, line: string, end: number) => boolean | void,
    opts: { start?: number; lineNo?: number; want?: LineSink['want']; chunkDone?: LineSink['chunkDone']; pieces?: (p: Piece) => boolean } = {},
  ): Promise<Awaited<ReturnType<typeof scanLines>> | undefined> {
    const file = path.join(this.dir, f.name);
    const pieces = await this.piecesOf(f);
    if (pieces) return this.scanPieces(f, opts.pieces ? pieces.filter(opts.pieces) : pieces, (rec, text) => onRecord(rec, text, 0), opts.chunkDone);
    // scanLines reports a read error in `end.error` and rejects only with the sink's own failure
    // (e.g. the export's output), which is the caller's, not a damaged file.
    const end = await scanLines(
      file,
      {
        line: (text, lineNo, end) => {
          const rec = parseRecord(text);
          if (rec.kind === 'bad') this.warnLine(f.name, lineNo, rec.why);
          return onRecord(rec, text, end);
        },
        oversized: (lineNo) => this.warnLine(f.name, lineNo, `longer than ${64} KiB`),
        want: opts.want,
        chunkDone: opts.chunkDone,
      },
      opts,
    );
    if (end.error && !isMissing(end.error)) this.warnLine(f.name, (opts.lineNo ?? 0) + end.lines + 1, `unreadable from here (${end.error.message})`);
    if (end.error && isMissing(end.error)) return undefined;
    return end;
  }

  /**
   * Streams the records of a pieced month's `pieces`: entries in month order (`orderKey`, a merge of
   * the model pieces, decompressing each only when the merge reaches it), then the other pieces in
   * file order (corrections last). A damaged piece is skipped with one warning; the others are read.
   */
  private async scanPieces(
    f: LedgerFile,
    pieces: Piece[],
    onRecord: (rec: ReturnType<typeof parseRecord>, line: string) => boolean | void,
    chunkDone?: LineSink['chunkDone'],
  ): Promise<Awaited<ReturnType<typeof scanLines>>> {
    const entries = pieces.filter((p) => p.kind === 'entries').sort((a, b) => compare(a.first, b.first));
    const others = pieces.filter((p) => p.kind !== 'entries');
    // A piece in the merge is its compact bytes and the key of the line at its head; a line is decoded
    // only when delivered, so lines die young instead of living through the merge.
    type Head = { piece: PieceText; i: number; key: string };
    const active: Head[] = [];
    let next = 0;
    let lines = 0;
    const end = (stopped: boolean): Awaited<ReturnType<typeof scanLines>> => ({ lines, offset: 0, tail: 0, stopped });
    /** Moves `h` to its next line; false when the piece is done. */
    const advance = (h: Head): boolean => {
      if (++h.i >= h.piece.lines) return false;
      h.key = h.piece.quickOrderKey(h.i) ?? parsedOrderKey(h.piece.line(h.i) ?? '');
      return true;
    };
    const deliver = (piece: PieceText, i: number, text: string): boolean | void => {
      const rec = parseRecord(text);
      if (rec.kind === 'bad') this.warnLine(f.name, piece.lineNo(i), rec.why);
      return onRecord(rec, text);
    };
    const read = async (p: Piece): Promise<PieceText> => {
      const piece = await this.readPieceLines(f, p);
      lines += p.lines;
      return piece;
    };
    // The next few pieces are read ahead, so the merge does not wait for each one in turn.
    const ahead: Array<Promise<PieceText>> = [];
    let delivered = 0;
    const take = (): Promise<PieceText> => {
      while (ahead.length < PIECES_AHEAD && next + ahead.length < entries.length) ahead.push(read(entries[next + ahead.length]));
      next++;
      return ahead.shift()!;
    };
    for (;;) {
      let best = -1;
      for (let a = 0; a < active.length; a++) if (best < 0 || active[a].key < active[best].key) best = a;
      if (next < entries.length && (best < 0 || entries[next].first <= active[best].key)) {
        const head: Head = { piece: await take(), i: -1, key: '' };
        if (advance(head)) active.push(head);
        if (chunkDone) await chunkDone();
        continue;
      }
      if (best < 0) break;
      const cur = active[best];
      const text = cur.piece.line(cur.i);
      if (text !== undefined && deliver(cur.piece, cur.i, text) === false) return end(true);
      if (!advance(cur)) {
        active.splice(best, 1);
        cur.piece.release();
      }
      // Backpressure by lines delivered, not by pieces opened (many pieces may overlap in time).
      if (++delivered % PIECE_LINES === 0 && chunkDone) await chunkDone();
    }
    for (const p of others) {
      const piece = await read(p);
      for (let i = 0; i < piece.lines; i++) {
        const text = piece.line(i);
        if (text !== undefined && deliver(piece, i, text) === false) return end(true);
      }
      if (chunkDone) await chunkDone();
    }
    return end(false);
  }

  /** One piece's lines; a damaged piece is warned about (naming its first line) and reads as empty. */
  private async readPieceLines(f: LedgerFile, p: Piece): Promise<PieceText> {
    try {
      return await readPiece(path.join(this.dir, f.name), p);
    } catch (err) {
      if (!isMissing(err)) this.warnLine(f.name, p.line + 1, `unreadable piece of ${p.lines} lines (${describe(err)})`);
      return PieceText.EMPTY;
    }
  }

  private warnLine(name: string, lineNo: number, why: string): void {
    const key = `${name}:${lineNo}`;
    if (this.warned.has(key)) return;
    const count = this.warned.get(name) ?? 0;
    this.warned.set(name, count + 1);
    this.warned.set(key, 1);
    if (count < MAX_WARNINGS_PER_FILE) this.logger.warn(`ledger: skipped line ${lineNo} of ${path.join(this.dir, name)} (${why})`);
    else if (count === MAX_WARNINGS_PER_FILE) this.logger.warn(`ledger: more damaged lines in ${path.join(this.dir, name)} are skipped without a warning each`);
  }

  // ---- index -------------------------------------------------------------------------------------

  private indexPath(name: string): string {
    return path.join(this.dir, INDEX_DIR, `${name}.json`);
  }

  /** Up-to-date index of every file (oldest first). */
  private indexAll(): Promise<Array<{ file: LedgerFile; index: FileIndex }>> {
    return this.asReading(this.buildIndexes());
  }

  /**
   * Marks `run` as this process's read, with the background count it may start: a rewrite in pieces
   * lets both finish first (the user's totals come first).
   */
  private asReading<T>(run: Promise<T>): Promise<T> {
    this.reading = run.then(() => this.counting).catch(() => undefined);
    return run;
  }

  /** Forgets the indexes of files no longer in `files` (compressed or deleted since). */
  private forgetIndexesBut(files: LedgerFile[]): void {
    const live = new Set(files.map((f) => f.name));
    for (const name of this.indexes.keys()) if (!live.has(name)) this.indexes.delete(name);
  }

  /**
   * What the history view can answer with at once: every file whose index is up to date (or needs only
   * the lines appended since) and the current month's files (built now: new entries and the first
   * page's rows are there). Older files that need a whole read (no index yet after an upgrade or a lost
   * index directory; another time zone) come without an index and are counted in the background, one
   * at a time, newest first; `onDidIndex` reports the progress. Oldest first, like `indexAll`.
   */
  private readyIndexes(): Promise<Array<{ file: LedgerFile; index?: FileIndex }>> {
    return this.asReading(this.buildReadyIndexes());
  }

  private async buildReadyIndexes(): Promise<Array<{ file: LedgerFile; index?: FileIndex }>> {
    await this.flushWrites();
    await this.scheduleMaintenance();
    const files = await this.listFiles();
    const tz = currentTimeZone();
    const current = monthOf(new Date(this.now()));
    const out: Array<{ file: LedgerFile; index?: FileIndex }> = [];
    const later: LedgerFile[] = [];
    for (const f of files) {
      const known = await this.knownIndex(f, tz);
      if (known === 'whole' && f.month < current) {
        out.push({ file: f });
        later.push(f);
        continue;
      }
      // A closed file's index is used as it is, without waiting for a rewrite of the file in progress
      // (its content stays the same; `collect` waits when it reads the file); the others are brought up to date.
      const index = known && known !== 'whole' && f.kind !== 'live' ? known : await this.indexOf(f, tz);
      if (index) out.push({ file: f, index });
    }
    this.forgetIndexesBut(files);
    if (later.length > 0) this.countInBackground(later);
    return out;
  }

  /**
   * The index of `f` known without reading the file (in memory or on disk; a live file's may lack its
   * newest lines), 'whole' when building one reads the file whole, undefined when it is gone or empty.
   */
  private async knownIndex(f: LedgerFile, tz: string): Promise<FileIndex | 'whole' | undefined> {
    const st = await fsp.stat(path.join(this.dir, f.name)).catch(() => undefined);
    if (!st || st.size === 0) return undefined;
    const inMemory = this.indexes.get(f.name);
    if (indexFits(inMemory, st, f.kind === 'live', tz)) return inMemory;
    const loaded = await this.loadIndex(f.name);
    if (!indexFits(loaded, st, f.kind === 'live', tz)) return 'whole';
    if (!this.building.has(f.name)) this.indexes.set(f.name, loaded);
    return loaded;
  }

  /** Queues `files` for the background count and starts it unless it runs; never blocks the caller. */
  private countInBackground(files: LedgerFile[]): void {
    for (const f of files) {
      this.toCount.set(f.name, f);
      this.countRound.add(f.month);
    }
    if (this.counting) return;
    const run = async (): Promise<void> => {
      try {
        for (;;) {
          await nextTurn(); // a turn for the event loop between files
          if (this.stopCounting) return;
          const next = sortFiles([...this.toCount.values()]).pop(); // newest first: recent totals fill in first
          if (!next) break;
          if (this.countPauseMs > 0) await sleep(this.countPauseMs);
          if (this.stopCounting) return;
          await this.indexOf(next, currentTimeZone()).catch((err) => this.logger.warn(`ledger: could not index ${next.name}: ${describe(err)}`));
          this.toCount.delete(next.name);
          if (this.toCount.size > 0) this.emitIndexed(this.countingProgress([...this.toCount.values()]));
        }
        // Before the last event: what its listeners start finds no count running.
        this.counting = undefined;
        this.countRound.clear();
        this.emitIndexed({ months: [], total: 0 });
      } finally {
        this.counting = undefined;
      }
    };
    this.counting = run().catch((err) => this.logger.warn(`ledger: counting months in the background failed: ${describe(err)}`));
  }

  /** The months of files not counted yet, newest first, out of this round's. */
  private countingProgress(uncounted: LedgerFile[]): LedgerIndexing {
    const months = [...new Set(uncounted.map((f) => f.month))].sort((a, b) => compare(b, a));
    return { months, total: Math.max(this.countRound.size, months.length) };
  }

  private emitIndexed(p: LedgerIndexing): void {
    notifyAll(this.indexListeners, p, this.logger, 'ledger: onDidIndex');
  }

  private async buildIndexes(): Promise<Array<{ file: LedgerFile; index: FileIndex }>> {
    await this.flushWrites();
    await this.scheduleMaintenance();
    const files = await this.listFiles();
    const out: Array<{ file: LedgerFile; index: FileIndex }> = [];
    const tz = currentTimeZone();
    for (const f of files) {
      const index = await this.indexOf(f, tz);
      if (index) out.push({ file: f, index });
    }
    this.forgetIndexesBut(files);
    return out;
  }

  /** The up-to-date index of `f`, built or extended as needed; one build at a time per file. */
  private indexOf(f: LedgerFile, tz: string): Promise<FileIndex | undefined> {
    return this.oneAtATime(f.name, () => this.updateIndex(f, tz));
  }

  /** Runs `fn` after every earlier build of file `name`'s index (or rewrite of the file) has settled. */
  private oneAtATime<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.building.get(name) ?? Promise.resolve()).then(fn);
    const settled = run.catch(() => undefined);
    this.building.set(name, settled);
    void settled.then(() => {
      if (this.building.get(name) === settled) this.building.delete(name);
    });
    return run;
  }

  private async updateIndex(f: LedgerFile, tz: string): Promise<FileIndex | undefined> {
    let st;
    try {
      st = await fsp.stat(path.join(this.dir, f.name));
    } catch (err) {
      if (!isMissing(err)) this.logger.warn(`ledger: could not read ${f.name}: ${describe(err)}`);
      return undefined;
    }
    const appendOnly = f.kind === 'live';
    const fits = (i: FileIndex | undefined): i is FileIndex => indexFits(i, st, appendOnly, tz);
    let index = this.indexes.get(f.name);
    if (!fits(index)) index = await this.loadIndex(f.name);
    if (!fits(index)) {
      // Another time zone: the totals are rebuilt, the pieces (in UTC instants) still describe the file.
      const pieces = await this.piecesOf(f);
      index = {
        v: INDEX_VERSION,
        tz,
        name: f.name,
        ino: st.ino,
        size: 0,
        mtimeMs: st.mtimeMs,
        lines: 0,
        summary: new FileSummary(),
        ...(pieces ? { pieces } : {}),
        ...(appendOnly ? { blocks: [] } : {}),
      };
    }
    const grown = appendOnly ? st.size > index.size : index.lines === 0 && index.size === 0 && st.size > 0;
    if (grown) {
      const idx = index;
      const blocks = appendOnly && idx.blocks ? new BlockGrower(idx.blocks) : undefined;
      const end = await this.scanFile(
        f,
        (rec, text, lineEnd) => {
          if (rec.kind === 'entry') idx.summary.addEntry(rec.entry);
          else if (rec.kind === 'refused') idx.summary.addRefused(rec.refused);
          else if (rec.kind === 'correction') idx.summary.addCorrection(rec.correction);
          blocks?.add(rec, text, lineEnd);
        },
        // A closed month is read whole (in the background count): a turn for the event loop between chunks.
        { start: idx.size, lineNo: idx.lines, chunkDone: f.kind === 'gz' ? nextTurn : undefined },
      );
      if (!end) return undefined;
      blocks?.finish(end.offset);
      idx.lines += end.lines;
      // A closed (compressed) month keeps no estimates waiting for corrections: those come within
      // minutes, long before a month is compressed (a late one is folded in by the next compression).
      if (f.kind === 'gz') idx.summary.pending.clear();
      idx.size = appendOnly ? end.offset : st.size;
      idx.mtimeMs = st.mtimeMs;
      await this.saveIndex(idx);
    }
    this.indexes.set(f.name, index);
    return index;
  }

  private async loadIndex(name: string): Promise<FileIndex | undefined> {
    try {
      const raw = JSON.parse(await fsp.readFile(this.indexPath(name), 'utf8')) as Omit<FileIndex, 'summary' | 'pieces' | 'blocks'> & {
        summary: unknown;
        pieces?: unknown;
        blocks?: unknown;
      };
      const summary = FileSummary.fromJSON(raw.summary);
      if (!summary || raw.name !== name) return undefined;
      const pieces = raw.pieces === undefined ? undefined : piecesFromJSON(raw.pieces);
      const blocks = raw.blocks === undefined ? undefined : blocksFromJSON(raw.blocks);
      return { ...raw, summary, pieces, blocks };
    } catch {
      return undefined;
    }
  }

  private async saveIndex(index: FileIndex): Promise<void> {
    try {
      await fsp.mkdir(path.join(this.dir, INDEX_DIR), { recursive: true });
      await writeFileAtomic(
        this.indexPath(index.name),
        JSON.stringify({ ...index, pieces: index.pieces && piecesToJSON(index.pieces), blocks: index.blocks && blocksToJSON(index.blocks) }),
      );
    } catch (err) {
      this.logger.warn(`ledger: could not save the index of ${index.name}: ${describe(err)}`);
    }
  }

  // ---- reading -----------------------------------------------------------------------------------

  /** Totals of every entry passing `filter`, from the index; exact (waits until every month is counted). */
  async query(filter: LedgerFilter = NO_FILTER): Promise<LedgerSummary> {
    return summarizeRows(effectiveRows(await this.indexAll()), filter);
  }

  /**
   * What the history view opens with: the newest `rows` matching entries, totals, models and refusals.
   * Answers without waiting for months that need a whole read to be counted (see `readyIndexes`):
   * their totals are then left out and named in `pending`; the months the page's rows reach are
   * indexed first, so rows are always exact.
   */
  async view(filter: LedgerFilter, rows: number): Promise<LedgerView> {
    const files = await this.readyIndexes();
    const counted = (): number => files.filter((x) => x.index).length;
    const before = counted();
    let overview = this.overviewOf(files, filter);
    const page = await this.collect(files, filter, rows, undefined, overview.summary.totals.requests, this.indexNow());
    if (counted() !== before) overview = this.overviewOf(files, filter); // the page counted months on its way
    return { ...page, ...overview };
  }

  /** `view` without rows: what the history refreshes when `onDidIndex` fires. */
  async overview(filter: LedgerFilter): Promise<LedgerOverview> {
    return this.overviewOf(await this.readyIndexes(), filter);
  }

  /** Totals, models, clients and refusals of the counted files; `pending` names the others' months. */
  private overviewOf(files: Array<{ file: LedgerFile; index?: FileIndex }>, filter: LedgerFilter): LedgerOverview {
    const all = files.filter((x): x is { file: LedgerFile; index: FileIndex } => x.index !== undefined);
    const indexRows = effectiveRows(all);
    const summary = summarizeRows(indexRows, filter);
    const models = [...new Set(indexRows.filter((r) => r.requests > 0).map((r) => r.model))].sort((a, b) => a.localeCompare(b));
    const clients = [...new Set(indexRows.filter((r) => r.requests > 0).map((r) => r.client))].sort((a, b) => a.localeCompare(b));
    const refused = refusedGroups(
      [...all.flatMap(({ index }) => [...index.summary.refused.values()]), ...this.unwrittenRefusals()],
      filter,
      MAX_REFUSED_GROUPS,
    );
    const uncounted = files.filter((x) => !x.index).map((x) => x.file);
    return {
      summary,
      models,
      clients,
      refused: refused.groups,
      refusedTotal: refused.total,
      ...(uncounted.length > 0 ? { pending: this.countingProgress(uncounted) } : {}),
    };
  }

  /** Builds the index of a file not counted yet when a page reaches it (the background count then skips it). */
  private indexNow(): (f: LedgerFile) => Promise<FileIndex | undefined> {
    const tz = currentTimeZone();
    return (f) => this.indexOf(f, tz);
  }

  /**
   * The `size` matching entries just older (in file order) than the entry `cursor` names; when that
   * entry is gone, those strictly older than its time. Months not counted yet are indexed as the page reaches them.
   */
  async pageBefore(filter: LedgerFilter, cursor: EntryCursor, size: number): Promise<LedgerPage> {
    if (!Number.isFinite(Date.parse(cursor.time))) return { entries: [], hasMore: false };
    return this.collect(await this.readyIndexes(), filter, size, cursor, undefined, this.indexNow());
  }

  /**
   * Newest-first walk over the files that hold matching entries. Plain files are read backwards
   * from their end; compressed ones forwards, keeping only the last `size` matches.
   */
  private async collect(
    all: Array<{ file: LedgerFile; index?: FileIndex }>,
    filter: LedgerFilter,
    size: number,
    cursor?: EntryCursor,
    totalMatching?: number,
    indexNow?: (f: LedgerFile) => Promise<FileIndex | undefined>,
  ): Promise<LedgerPage> {
    const want = Math.max(0, Math.floor(size));
    const cursorMonth = cursor ? monthOfTime(cursor.time) : undefined;
    const cursorTime = cursor ? Date.parse(cursor.time) : NaN;
    // Files with matching entries, and those with corrections (which may concern an older file's entries).
    // Files not counted yet (no index) may hold any: they are indexed when the walk reaches them.
    const holds = (index: FileIndex): boolean => index.summary.matches(filter) || index.summary.corrections > 0;
    const candidates = all.filter(({ file, index }) => (!index || holds(index)) && (!cursorMonth || file.month <= cursorMonth));
    const prefilter = lineFilter(filter);
    // Corrections met on the way (always in the same file as their entry or a newer one, so met
    // before or with it); the oldest of an entry's wins.
    const corrections = new WalkCorrections();
    // Live-file blocks passed over that hold corrections: read at the end, only where they can concern an entry taken.
    const passed: PassedBlock[] = [];
    const accept = (text: string, local: Map<string, LedgerCorrection>, firstWins: boolean): LedgerEntry | undefined => {
      const rec = parseRecord(text);
      if (rec.kind === 'correction') {
        const key = correctionKey(rec.correction.id, rec.correction.time);
        if (!firstWins || !local.has(key)) local.set(key, rec.correction);
        return undefined;
      }
      if (rec.kind !== 'entry' || !entryPasses(filter, rec.entry)) return undefined;
      return rec.entry;
    };
    const isCursor = (e: LedgerEntry): boolean => !!cursor && e.id === cursor.id && e.time === cursor.time;
    // Without a cursor, or once it is found, everything older counts; before that, only what lies
    // in older months, or (when the cursor's entry is gone) what is strictly older than its time.
    let found = !cursor;
    if (cursor) {
      // The cursor's month is looked up through its index: a month not counted yet is indexed first.
      for (const c of candidates) if (!c.index && (c.file.month === cursorMonth || c.file.month === '')) c.index = await indexNow?.(c.file);
    }
    const indexed = candidates.filter((c): c is { file: LedgerFile; index: FileIndex } => c.index !== undefined);
    const cursorInLedger = cursor ? await this.containsCursor(indexed, cursor, cursorMonth!) : false;
    const older = (e: LedgerEntry, file: LedgerFile): boolean => {
      if (found) return true;
      if (!cursorInLedger) {
        const t = Date.parse(e.time);
        return file.month < cursorMonth! || (Number.isFinite(t) && t < cursorTime);
      }
      return false;
    };
    const newestFirst: LedgerEntry[][] = [];
    let got = 0;
    let hasMore = false;
    for (let i = candidates.length - 1; i >= 0 && !hasMore; i--) {
      const candidate = candidates[i];
      if (got >= want) {
        hasMore = true; // (a month not counted yet may turn out to hold none: the next page is then empty)
        break;
      }
      if (!candidate.index) {
        candidate.index = await indexNow?.(candidate.file);
      } else if (this.building.has(candidate.file.name) && indexNow) {
        // Being rewritten in pieces (or indexed): read once that is done, with the index that describes it then.
        candidate.index = (await indexNow(candidate.file)) ?? candidate.index;
      }
      if (!candidate.index || !holds(candidate.index)) continue; // (one indexed on the way may hold none)
      const { file, index } = candidate as { file: LedgerFile; index: FileIndex };
      const need = want - got;
      const taken: LedgerEntry[] = [];
      let moreHere = false;
      if (index.pieces) {
        // In its cursor's month, a pieced month is in (time, id) order: older means a smaller key.
        if (!found && file.month !== cursorMonth && cursorInLedger) continue;
        const bound = !found && file.month === cursorMonth ? orderKey(cursor!.time, cursor!.id) : undefined;
        found = true;
        const page = await this.collectPieces(file, index.pieces, filter, need, bound, corrections);
        taken.push(...page.taken);
        moreHere = page.more;
      } else if (file.kind === 'gz') {
        // Forward: a ring of the last `need` matches before the cursor (or the end).
        const ring: LedgerEntry[] = [];
        const local = new Map<string, LedgerCorrection>();
        let dropped = false;
        let past = false; // beyond the cursor: only corrections still matter
        const foundBefore = found;
        await this.scanFile(
          file,
          (rec, text) => {
            if (rec.kind === 'correction') {
              accept(text, local, true);
              return;
            }
            if (rec.kind !== 'entry' || past) return;
            if (cursorInLedger && !found && isCursor(rec.entry)) {
              found = true;
              past = true;
              return;
            }
            if (!cursorInLedger && !older(rec.entry, file)) return;
            const e = accept(text, local, true);
            if (!e) return;
            ring.push(e);
            if (ring.length > 2 * need) {
              ring.splice(0, ring.length - need); // amortised: no shift per entry
              dropped = true;
            }
          },
          { want: prefilter },
        );
        for (const [k, c] of local) corrections.set(k, c);
        if (cursorInLedger && !foundBefore && !found) continue; // the cursor lies in an older file
        if (ring.length > need) {
          ring.splice(0, ring.length - need);
          dropped = true;
        }
        taken.push(...ring.reverse());
        moreHere = dropped;
      } else {
        // The live file: only the blocks that can hold what this walk still looks for (see ledgerBlocks.ts).
        const read = (b: Block): boolean =>
          cursorInLedger && !found ? blockSpans(b, cursorTime) : blockMatches(b, filter) && (found || file.month < cursorMonth! || b.t0 < cursorTime);
        await scanLinesBackward(
          path.join(this.dir, file.name),
          (text) => {
            if (cursorInLedger && !found) {
              const rec = parseRecord(text);
              if (rec.kind === 'entry' && isCursor(rec.entry)) found = true;
              else if (rec.kind === 'correction') accept(text, corrections, false);
              return;
            }
            const e = accept(text, corrections, false);
            if (!e || !older(e, file)) return;
            if (taken.length >= need) {
              moreHere = true;
              return false;
            }
            taken.push(e);
          },
          prefilter,
          index.blocks && file.kind === 'live'
            ? blockRanges(index, index.blocks, prefilter, read, (range) => passed.push({ file, index, range, at: corrections.reserve() }))
            : undefined,
        ).catch((err) => {
          if (!isMissing(err)) this.logger.warn(`ledger: could not read ${file.name}: ${describe(err)}`);
        });
      }
      got += taken.length;
      newestFirst.push(taken);
      if (moreHere) hasMore = true;
    }
    if (!hasMore && got >= want && totalMatching !== undefined) hasMore = totalMatching > got;
    const entries = newestFirst.flat().reverse();
    await this.correctionsOfPassedBlocks(passed, entries, corrections);
    return { entries: applyCorrections(entries, corrections), hasMore };
  }

  /**
   * The corrections of the live-file blocks a `collect` walk passed over, of those blocks only whose
   * corrections can concern one of `entries`, each set at the place its block had in the walk.
   */
  private async correctionsOfPassedBlocks(passed: PassedBlock[], entries: LedgerEntry[], corrections: WalkCorrections): Promise<void> {
    if (passed.length === 0 || entries.length === 0) return;
    const times = entries
      .map((e) => Date.parse(e.time))
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const byFile = new Map<string, PassedBlock[]>();
    for (const p of passed) {
      if (!blockCorrects(p.range.block, times)) continue;
      const list = byFile.get(p.file.name) ?? [];
      list.push(p);
      byFile.set(p.file.name, list);
    }
    for (const [name, list] of byFile) {
      let at = 0;
      await scanLinesBackward(
        path.join(this.dir, name),
        (text) => {
          const rec = parseRecord(text);
          if (rec.kind === 'correction') corrections.setAt(correctionKey(rec.correction.id, rec.correction.time), rec.correction, at);
        },
        undefined,
        function* (file) {
          // Replaced since the walk (a month's compression): its corrections are read with the new file's index next time.
          if (file.ino !== list[0].index.ino) return;
          for (const p of list) {
            at = p.at;
            yield p.range;
          }
        },
      ).catch((err) => {
        if (!isMissing(err)) this.logger.warn(`ledger: could not read ${name}: ${describe(err)}`);
      });
    }
  }

  /**
   * The newest `need` entries passing `filter` (and older than `bound`) of a pieced month, newest
   * first: pieces are read newest (by their last key) first, until no unread piece can hold an entry
   * newer than the `need`-th found. The month's corrections are added to `corrections` (first wins).
   */
  private async collectPieces(
    file: LedgerFile,
    pieces: Piece[],
    filter: LedgerFilter,
    need: number,
    bound: string | undefined,
    corrections: Map<string, LedgerCorrection>,
  ): Promise<{ taken: LedgerEntry[]; more: boolean }> {
    const candidates = pieces.filter((p) => pieceMatches(p, filter) && (bound === undefined || p.first < bound)).sort((a, b) => compare(b.last, a.last));
    const found: Array<{ key: string; entry: LedgerEntry }> = [];
    let read = 0;
    while (read < candidates.length) {
      // A few pieces at a time, read in parallel.
      const batch = candidates.slice(read, read + PIECES_AHEAD);
      for (const piece of await Promise.all(batch.map((p) => this.readPieceLines(file, p)))) {
        for (let i = 0; i < piece.lines; i++) {
          const text = piece.line(i);
          if (text === undefined) continue;
          const rec = parseRecord(text);
          if (rec.kind === 'bad') this.warnLine(file.name, piece.lineNo(i), rec.why);
          if (rec.kind !== 'entry' || !entryPasses(filter, rec.entry)) continue;
          const key = orderKey(rec.entry.time, rec.entry.id);
          if (bound === undefined || key < bound) found.push({ key, entry: rec.entry });
        }
      }
      read += batch.length;
      const nextLast = candidates[read]?.last;
      if (nextLast === undefined || found.filter((x) => x.key > nextLast).length >= need) break;
    }
    found.sort((a, b) => compare(b.key, a.key));
    const taken = found.slice(0, need).map((x) => x.entry);
    if (taken.length > 0) {
      const local = new Map<string, LedgerCorrection>();
      for (const p of pieces.filter((x) => x.kind === 'corrections')) {
        const piece = await this.readPieceLines(file, p);
        for (let i = 0; i < piece.lines; i++) {
          const rec = parseRecord(piece.line(i) ?? '');
          if (rec.kind !== 'correction') continue;
          const key = correctionKey(rec.correction.id, rec.correction.time);
          if (!local.has(key)) local.set(key, rec.correction);
        }
      }
      for (const [k, c] of local) corrections.set(k, c);
    }
    return { taken, more: found.length > need || read < candidates.length };
  }

  /** Whether the entry `cursor` names is still in the files of its month. */
  private async containsCursor(candidates: Array<{ file: LedgerFile; index: FileIndex }>, cursor: EntryCursor, month: string): Promise<boolean> {
    const needle = `"id":${JSON.stringify(cursor.id)}`;
    const timeNeedle = `"time":${JSON.stringify(cursor.time)}`;
    const isCursor = (rec: ReturnType<typeof parseRecord>): boolean => rec.kind === 'entry' && rec.entry.id === cursor.id && rec.entry.time === cursor.time;
    for (const { file, index } of candidates) {
      if (file.month !== month && file.month !== '') continue;
      let hit = false;
      const idBytes = Buffer.from(needle);
      const want: LineSink['want'] = (buf, start, end) => includesWithin(buf, idBytes, start, end);
      if (index.blocks && file.kind === 'live') {
        // Only the blocks whose time range holds the cursor's time.
        const time = Date.parse(cursor.time);
        await scanLinesBackward(
          path.join(this.dir, file.name),
          (text) => {
            hit = text.includes(timeNeedle) && isCursor(parseRecord(text));
            return !hit;
          },
          want,
          blockRanges(index, index.blocks, want, (b) => blockSpans(b, time)),
        ).catch((err) => {
          if (!isMissing(err)) this.logger.warn(`ledger: could not read ${file.name}: ${describe(err)}`);
        });
        if (hit) return true;
        continue;
      }
      const key = orderKey(cursor.time, cursor.id);
      await this.scanFile(
        file,
        (rec, text) => {
          if (!text.includes(timeNeedle)) return;
          if (isCursor(rec)) {
            hit = true;
            return false;
          }
        },
        { want, pieces: (p) => p.kind === 'entries' && p.first <= key && key <= p.last },
      );
      if (hit) return true;
    }
    return false;
  }

  /**
   * What the proxy seeds its budgets and its reconciler with at start, without reading whole months:
   * points per local day from `fromDay` on (from the index), and the entries from `recentSince` on
   * that the reconciler uses, estimated ones and those with a query id (read from the end of the newest files). Entries from `before` on (the caller counts its own live)
   * are left out of both, as they were when the seed read the month.
   */
  async startupSeed(opts: {
    fromDay: string;
    recentSince: Date;
    before: Date;
  }): Promise<{ days: Array<{ day: string; points: number }>; recent: LedgerEntry[] }> {
    await this.scheduleMaintenance();
    return this.exclusive(async () => {
      const files = await this.listFiles();
      const since = opts.recentSince.getTime();
      const before = opts.before.getTime();
      // Newest first; a plain file is read backwards until its entries are an hour older than `since`
      // (entries are appended when a request ends, so a little out of time order).
      const recent: LedgerEntry[] = [];
      const corrections = new Map<string, LedgerCorrection>();
      const recentMonth = monthOf(new Date(since - MAX_REQUEST_MS));
      const take = (rec: ReturnType<typeof parseRecord>): boolean => {
        if (rec.kind === 'correction') corrections.set(correctionKey(rec.correction.id, rec.correction.time), rec.correction);
        if (rec.kind !== 'entry') return true;
        const t = Date.parse(rec.entry.time);
        // Kept: what the reconciler uses (estimates, query ids) and what the caller counts live.
        if (t >= since && (rec.entry.pointsEstimated || rec.entry.queryId || t >= before)) recent.push(rec.entry);
        return !(t < since - MAX_REQUEST_MS);
      };
      for (const f of [...files].reverse()) {
        if (f.month !== '' && f.month < recentMonth) break;
        if (f.kind === 'gz' || f.kind === 'legacy') {
          await this.scanFile(f, (rec) => void take(rec), { pieces: (p) => p.kind === 'corrections' || (p.kind === 'entries' && !(p.t1 < since)) });
        } else {
          // Only lines that can matter are decoded: the time is read off the line's start.
          let done = false;
          const want = (buf: Buffer, start: number, end: number): boolean => {
            const t = lineTime(buf, start, end);
            if (t === undefined) return true; // a correction, another kind, or another shape: decoded
            if (t < since - MAX_REQUEST_MS) return (done = true);
            return t >= before || (t >= since && (includesWithin(buf, ESTIMATED, start, end) || includesWithin(buf, QUERY_ID, start, end)));
          };
          await scanLinesBackward(path.join(this.dir, f.name), (text) => (done ? false : take(parseRecord(text))), want).catch((err) => {
            if (!isMissing(err)) this.logger.warn(`ledger: could not read ${f.name}: ${describe(err)}`);
          });
        }
      }
      const seeded = applyCorrections(recent, corrections).sort((a, b) => compare(a.time, b.time));
      // Points per day from the index of the months that hold those days.
      const dayMonth = monthOf(new Date(Date.parse(`${opts.fromDay}T00:00:00Z`) - 86_400_000));
      const tz = currentTimeZone();
      const indexed: Array<{ file: LedgerFile; index: FileIndex }> = [];
      for (const f of files.filter((x) => x.month === '' || x.month >= dayMonth)) {
        const index = await this.indexOf(f, tz);
        if (index) indexed.push({ file: f, index });
      }
      const days = new Map<string, number>();
      for (const r of effectiveRows(indexed)) if (r.day >= opts.fromDay) days.set(r.day, (days.get(r.day) ?? 0) + r.points);
      for (const e of seeded) {
        if (Date.parse(e.time) < before) continue;
        const day = dayOfTime(e.time);
        if (days.has(day)) days.set(day, days.get(day)! - (e.points ?? 0));
      }
      return {
        days: [...days].sort(([a], [b]) => compare(a, b)).map(([day, points]) => ({ day, points })),
        recent: seeded.filter((e) => Date.parse(e.time) < before),
      };
    });
  }

  /** Entries oldest first, across every file (tests, small ledgers); unparsable lines are skipped. Never rejects. */
  async read(opts: LedgerReadOptions = {}): Promise<LedgerEntry[]> {
    await this.flushWrites();
    const since = opts.since ? opts.since.getTime() : -Infinity;
    const until = opts.until ? opts.until.getTime() : Infinity;
    const limit = opts.limit !== undefined && opts.limit >= 0 ? Math.floor(opts.limit) : Infinity;
    if (limit === 0) return [];
    const out: LedgerEntry[] = [];
    const corrections = new Map<string, LedgerCorrection>();
    const fromMonth = opts.since ? monthOf(opts.since) : '';
    const toMonth = opts.until ? monthOf(opts.until) : '9999-99';
    for (const f of await this.listFiles()) {
      // Files of months wholly outside [since, until) are not opened (the old rotated ones always are).
      if (f.month && (f.month < fromMonth || f.month > toMonth)) continue;
      await this.scanFile(f, (rec) => {
        if (rec.kind === 'correction') {
          const key = correctionKey(rec.correction.id, rec.correction.time);
          if (!corrections.has(key)) corrections.set(key, rec.correction);
          return;
        }
        if (rec.kind !== 'entry') return;
        const e = rec.entry;
        if (opts.model !== undefined && e.model !== opts.model) return;
        if (since !== -Infinity || until !== Infinity) {
          const t = Date.parse(e.time);
          if (!(Number.isFinite(t) && t >= since && t < until)) return;
        }
        out.push(e);
        if (out.length > limit) out.shift();
      });
    }
    return applyCorrections(out, corrections);
  }

  /** Every refusal summary written, oldest first. */
  async readRefused(): Promise<RefusedSummary[]> {
    await this.flushWrites();
    const out: RefusedSummary[] = [];
    for (const f of await this.listFiles()) {
      await this.scanFile(
        f,
        (rec) => {
          if (rec.kind === 'refused') out.push(rec.refused);
        },
        { pieces: (p) => p.kind === 'refused' },
      );
    }
    return out;
  }

  /**
   * Streams CSV (see `csvRow`) of every entry matching `filter`, oldest first, to `out`; resolves with
   * the row count. `onRows` hears the rows written so far after each chunk; an aborted `signal` stops
   * the export between chunks (it rejects with the signal's reason).
   */
  async exportCsv(filter: LedgerFilter, out: Writable, opts: { signal?: AbortSignal; onRows?: (rows: number) => void } = {}): Promise<number> {
    const all = await this.indexAll();
    let count = 0;
    let buffered: string[] = [csvHeader()];
    const push = async (): Promise<void> => {
      opts.signal?.throwIfAborted();
      if (buffered.length === 0) return;
      const chunk = buffered.join('');
      buffered = [];
      if (!out.write(chunk)) await once(out, 'drain');
      opts.onRows?.(count);
    };
    const want = lineFilter(filter);
    let corrections = new Map<string, LedgerCorrection>();
    let correctionsMonth: string | undefined;
    for (const { file, index } of all) {
      if (!index.summary.matches(filter)) continue;
      if (correctionsMonth !== file.month) {
        // A month's corrections follow their entries: gather them first (only where there are some).
        correctionsMonth = file.month;
        corrections = new Map();
        for (const other of all.filter((x) => x.file.month === file.month && x.index.summary.corrections > 0)) {
          await this.scanFile(
            other.file,
            (rec) => {
              if (rec.kind !== 'correction') return;
              const key = correctionKey(rec.correction.id, rec.correction.time);
              if (!corrections.has(key)) corrections.set(key, rec.correction);
            },
            {
              want: isCorrectionLine,
              pieces: (p) => p.kind === 'corrections',
            },
          );
        }
      }
      await this.scanFile(
        file,
        (rec) => {
          if (rec.kind !== 'entry' || !entryPasses(filter, rec.entry)) return;
          buffered.push(csvRow(applyCorrection(rec.entry, corrections.get(correctionKey(rec.entry.id, rec.entry.time)))));
          count++;
        },
        { want, chunkDone: push, pieces: (p) => pieceMatches(p, filter) },
      );
    }
    await push();
    return count;
  }

  /** Waits for this process's queued writes (reads then see them). */
  private flushWrites(): Promise<void> {
    if (this.batchTimer) this.startDrain();
    return this.exclusive(async () => undefined);
  }
}

/**
 * A look at a line's bytes that rules out most lines a filter rejects without decoding them: the
 * model as the writer serialises it, and the day of the leading `{"time":"…"`. Lines in another
 * shape pass (the full check after parsing decides).
 */
function lineFilter(filter: LedgerFilter): LineSink['want'] {
  const model = filter.model !== null ? Buffer.from(`"model":${JSON.stringify(filter.model)}`) : undefined;
  const client = filter.client != null ? Buffer.from(`"client":${JSON.stringify(filter.client)}`) : undefined;
  const ranged = filter.from !== null || filter.to !== null;
  if (!model && !client && !ranged) return undefined;
  return (buf, start, end) => {
    // Other records (corrections, refusals) always pass: the caller decides what to do with them.
    if (end - start > OTHER_PREFIX.length && !buf.subarray(start, start + TIME_PREFIX.length).equals(TIME_PREFIX)) return true;
    if (model && !includesWithin(buf, model, start, end)) return false;
    if (client && !includesWithin(buf, client, start, end)) return false;
    if (!ranged || end - start < TIME_PREFIX.length + 20 || !buf.subarray(start, start + TIME_PREFIX.length).equals(TIME_PREFIX)) return true;
    const from = start + TIME_PREFIX.length;
    const close = buf.indexOf(0x22, from);
    if (close < 0 || close > from + 40) return true;
    const day = dayOfTime(buf.toString('latin1', from, close));
    return passes({ model: null, from: filter.from, to: filter.to }, day, '');
  };
}

const ESTIMATED = Buffer.from('"pointsEstimated":true');
const QUERY_ID = Buffer.from('"queryId":"');

/** The time (ms) at the start of an entry line as the writer writes it (`{"time":"…"`); undefined otherwise. */
function lineTime(buf: Buffer, start: number, end: number): number | undefined {
  if (end - start < TIME_PREFIX.length + 20 || !buf.subarray(start, start + TIME_PREFIX.length).equals(TIME_PREFIX)) return undefined;
  const from = start + TIME_PREFIX.length;
  const close = buf.indexOf(0x22, from);
  if (close < 0 || close > from + 40) return undefined;
  const t = Date.parse(buf.toString('latin1', from, close));
  return Number.isFinite(t) ? t : undefined;
}
const OTHER_PREFIX = Buffer.from('{"');
const CORRECTION_PREFIX = Buffer.from(CORRECTION_START);

/** A correction as the writer writes it (a block's other lines need not be decoded for its corrections). */
function isCorrectionLine(buf: Buffer, start: number, end: number): boolean {
  return end - start > CORRECTION_PREFIX.length && buf.subarray(start, start + CORRECTION_PREFIX.length).equals(CORRECTION_PREFIX);
}

/** A block's range and the look at its lines that finds its corrections. */
type CorrectionRange = LineRange & { block: Block };

/** A live-file block a `collect` walk passed over for its corrections, and its place in the walk. */
interface PassedBlock {
  file: LedgerFile;
  index: FileIndex;
  range: CorrectionRange;
  at: number;
}

/**
 * Corrections met by a newest-first walk, which keeps the last one set for an entry (the oldest in the
 * files), remembering when each was set, so corrections read later can be set at the place they had.
 */
class WalkCorrections extends Map<string, LedgerCorrection> {
  private readonly when = new Map<string, number>();
  private clock = 0;

  override set(key: string, c: LedgerCorrection): this {
    this.when.set(key, this.clock++);
    return super.set(key, c);
  }

  /** A place in the walk for corrections read later. */
  reserve(): number {
    return this.clock++;
  }

  /** Sets `c` as if at place `at`: over what was set before it, not over what was set after. */
  setAt(key: string, c: LedgerCorrection, at: number): void {
    if ((this.when.get(key) ?? -1) > at) return;
    this.when.set(key, at);
    super.set(key, c);
  }
}

/**
 * The parts of a live file to read newest first (see ledgerBlocks.ts): what was appended after the
 * index, all of it; then each block `read` wants, with `want`; the others holding corrections go to
 * `passCorrections` when given (to be read for their corrections only, later and only if needed). `read`
 * is asked as the reading reaches each block, so it can depend on what was read before. A file that is
 * not the one indexed is read whole.
 */
function blockRanges(
  index: FileIndex,
  blocks: readonly Block[],
  want: LineSink['want'],
  read: (b: Block) => boolean,
  passCorrections?: (range: CorrectionRange) => void,
): (file: { size: number; ino: number }) => Iterable<LineRange> {
  // As they are now: a later extension of the index does not change what this reading covers.
  const indexed = index.size;
  const upTo = blocks.length;
  return function* (file) {
    if (file.ino !== index.ino || file.size < indexed) {
      yield { start: 0, end: file.size, want };
      return;
    }
    yield { start: indexed, end: file.size, want };
    for (let i = upTo - 1; i >= 0; i--) {
      const b = blocks[i];
      const end = Math.min(b.off + b.len, indexed);
      if (end <= b.off) continue;
      if (read(b)) yield { start: b.off, end, want };
      else if (passCorrections && b.corrections > 0) passCorrections({ start: b.off, end, want: b.oddCorrections ? want : isCorrectionLine, block: b });
    }
  };
}

/**
 * The index rows of every file, with corrections whose entry lies in another file of the same month
 * (a late correction after a compression, or for a migrated entry) applied to copies.
 */
function effectiveRows(all: Array<{ file: LedgerFile; index: FileIndex }>): IndexRow[] {
  const byMonth = new Map<string, FileSummary[]>();
  const rows: IndexRow[] = [];
  for (const { file, index } of all) {
    const list = byMonth.get(file.month) ?? [];
    list.push(index.summary);
    byMonth.set(file.month, list);
  }
  for (const summaries of byMonth.values()) {
    if (!summaries.some((s) => s.orphans.length > 0)) {
      for (const s of summaries) rows.push(...s.rows.values());
      continue;
    }
    const copies = summaries.map((s) => s.clone());
    for (const [i, s] of copies.entries()) {
      for (const c of s.orphans) copies.some((other, j) => j !== i && other.applyCorrection(c));
    }
    for (const s of copies) rows.push(...s.rows.values());
  }
  return rows;
}

/** Whether `needle` lies within buf[start, end) (a view, so the search stops at the line's end). */
function includesWithin(buf: Buffer, needle: Buffer, start: number, end: number): boolean {
  return end - start >= needle.length && buf.subarray(start, end).indexOf(needle) >= 0;
}

/** `orderKey` of a line as parsed ('' for anything not an entry): for lines `PieceText.quickOrderKey` cannot key off their bytes. */
function parsedOrderKey(text: string): string {
  const rec = parseRecord(text);
  return rec.kind === 'entry' ? orderKey(rec.entry.time, rec.entry.id) : '';
}

/**
 * Whether `i` still describes a file with stats `st` (an append-only file's index may lag behind its end).
 * A live file's blocks must describe it up to `size` (an index from before blocks, or one an older
 * version extended without them, is rebuilt: one read of the live file).
 */
function indexFits(i: FileIndex | undefined, st: { ino: number; size: number; mtimeMs: number }, appendOnly: boolean, tz: string): i is FileIndex {
  return (
    !!i &&
    i.v === INDEX_VERSION &&
    i.tz === tz &&
    i.ino === st.ino &&
    (appendOnly ? st.size >= i.size && !!i.blocks && blocksEnd(i.blocks) >= i.size : st.size === i.size && st.mtimeMs === i.mtimeMs)
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function currentTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone ?? '';
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
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

function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One CSV row with its CRLF. */
export function csvRow(e: LedgerEntry): string {
  return `${CSV_COLUMNS.map((c) => csvField(e[c])).join(',')}\r\n`;
}

/**
 * RFC 4180 CSV (CRLF line ends, header row). A field is quoted when it holds a comma, semicolon, quote,
 * CR or LF (spreadsheets in many locales split on `;`); quotes are doubled. Text that a spreadsheet
 * would run as a formula (OWASP: starting with = + - @ tab CR, here also LF and after leading spaces)
 * gets a leading apostrophe. `null`/missing values are empty fields.
 */
export function toCsv(entries: readonly LedgerEntry[]): string {
  return csvHeader() + entries.map(csvRow).join('');
}

const FORMULA_START = /^[ \u00a0]*[=+\-@\t\r\n\uff1d\uff0b\uff0d\uff20]/;

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (typeof v === 'string') {
    s = FORMULA_START.test(v) ? `'${v}` : v;
  } else {
    // Not String(v) for integers: V8 caches number-to-string results in a table that lives in the old
    // generation, so a year's export left ~25 MB of such strings there waiting for a full collection.
    s = typeof v === 'number' && Number.isSafeInteger(v) ? v.toFixed(0) : String(v);
  }
  return /[",;\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
