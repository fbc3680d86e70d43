/**
 * Token counting for the proxy, safe to use from the VS Code extension host.
 *
 * - The tokenizer (gpt-tokenizer, ~0.1-0.2 s of synchronous loading, ~25 MB of rank tables) runs in a worker
 *   thread that starts on the first count (never at import), is `unref()`ed while idle so it never keeps a
 *   process alive, stops after a long idle period and is restarted if it dies.
 * - Counts are cached per (text, encoding) in an LRU bounded by total characters: the next turn of a long
 *   conversation only sends the new messages to the worker.
 * - Callers never wait on a stuck or missing worker and never see an error: past the deadline, or without a
 *   worker, a cheap estimate is returned (`estimateTokens`).
 *
 * This module must not import the tokenizer (the extension bundle must stay free of rank files): the worker
 * bundle (`dist/tokenWorker.js`, from `./worker.ts`) is the only place that loads it.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log';
import { estimateAll, isEncodingName, type EncodingName } from './common';
import { TokenCountCache } from './lru';
import type { WorkerRequest, WorkerResponse } from './worker';

export { encodingForModel, estimateTokens, isEncodingName, MAX_PIECE_BYTES, utf8Length, type EncodingName } from './common';

export interface TokenCounter {
  /** Token counts of `texts`, in order (default encoding o200k_base). Never rejects. */
  count(texts: readonly string[], encoding?: EncodingName): Promise<number[]>;
  countOne(text: string, encoding?: EncodingName): Promise<number>;
  /** Starts the worker and loads o200k_base in the background, if not done yet. Never blocks. */
  warm(): void;
  /** Stops the worker; later counts answer with estimates. */
  dispose(): Promise<void>;
}

export interface TokenCounterOptions {
  /** Worker script; by default `tokenWorker.js` (bundle) or `worker.js` (tsc output) next to this module. */
  workerPath?: string;
  /** Bound of the count cache, in characters of cached text. Default 4,000,000. */
  cacheMaxChars?: number;
  /** How long a caller waits for the worker before getting estimates. Default 5000 ms. */
  timeoutMs?: number;
  /** An idle worker is stopped after this long (its ~25 MB of heap, ~70-100 MB of RSS, are given back); 0 = never. Default 10 min. */
  idleMs?: number;
  logger?: Logger;
}

export interface TokenCounterStats {
  workerPath: string | null;
  workerRunning: boolean;
  workerStarts: number;
  workerCrashes: number;
  /** Milliseconds from the last worker start to its first answer (cold start), if any. */
  lastColdStartMs: number | null;
  requests: number;
  textsSent: number;
  charsSent: number;
  cacheHits: number;
  cacheMisses: number;
  /** Texts answered by an estimate instead of an exact count. */
  estimatedTexts: number;
  timeouts: number;
  cacheEntries: number;
  cacheChars: number;
  cacheEvictions: number;
}

export interface ManagedTokenCounter extends TokenCounter {
  stats(): TokenCounterStats;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_CACHE_MAX_CHARS = 4_000_000;
const DEFAULT_IDLE_MS = 10 * 60_000;
/** Consecutive crashes after which the worker is left alone for CRASH_COOLDOWN_MS. */
const MAX_CRASHES_IN_ROW = 3;
const CRASH_COOLDOWN_MS = 30_000;

interface Pending {
  id: number;
  encoding: EncodingName;
  texts: string[];
  /** Present while a caller waits for this answer. */
  resolve?: (counts: number[]) => void;
  timer?: NodeJS.Timeout;
  watchdog?: NodeJS.Timeout;
}

/** Worker scripts to try, in order: the explicit one, the bundled name, the tsc output name. */
export function workerPathCandidates(explicit?: string): string[] {
  const list = [path.join(__dirname, 'tokenWorker.js'), path.join(__dirname, 'worker.js')];
  return explicit ? [explicit, ...list] : list;
}

export function createTokenCounter(opts: TokenCounterOptions = {}): ManagedTokenCounter {
  const timeoutMs = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
  const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  const cache = new TokenCountCache(opts.cacheMaxChars ?? DEFAULT_CACHE_MAX_CHARS);
  const log = opts.logger;

  let worker: Worker | undefined;
  let stopping: Worker | undefined;
  let resolvedPath: string | null | undefined;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let waiting = 0;
  let disposed = false;
  let crashesInRow = 0;
  let cooldownUntil = 0;
  let startedAt = 0;
  let answeredSinceStart = false;
  let warmedWorker: Worker | undefined;
  let idleTimer: NodeJS.Timeout | undefined;

  const stats = {
    workerStarts: 0,
    workerCrashes: 0,
    lastColdStartMs: null as number | null,
    requests: 0,
    textsSent: 0,
    charsSent: 0,
    cacheHits: 0,
    cacheMisses: 0,
    estimatedTexts: 0,
    timeouts: 0,
  };

  function resolvePath(): string | null {
    if (resolvedPath === undefined) {
      resolvedPath = workerPathCandidates(opts.workerPath).find((p) => existsSync(p)) ?? null;
      if (resolvedPath === null) log?.warn(`token worker not found (${workerPathCandidates(opts.workerPath).join(', ')}); counting tokens by estimate`);
    }
    return resolvedPath;
  }

  function updateRef(): void {
    if (!worker) return;
    if (waiting > 0) worker.ref();
    else worker.unref();
  }

  function clearIdle(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
  }

  function scheduleIdle(): void {
    clearIdle();
    if (idleMs <= 0 || !worker || pending.size > 0) return;
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (worker && pending.size === 0) stopWorker();
    }, idleMs);
    idleTimer.unref();
  }

  function stopWorker(): Promise<number> | undefined {
    const w = worker;
    if (!w) return undefined;
    worker = undefined;
    stopping = w;
    return w.terminate();
  }

  function ensureWorker(): Worker | undefined {
    if (disposed) return undefined;
    if (worker) return worker;
    if (Date.now() < cooldownUntil) return undefined;
    const file = resolvePath();
    if (!file) return undefined;
    let w: Worker;
    try {
      // execArgv: [] — the extension host's flags (inspector…) are not valid for a worker.
      w = new Worker(file, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 1024 } });
    } catch (err) {
      log?.warn(`token worker failed to start: ${err instanceof Error ? err.message : String(err)}`);
      noteCrash();
      return undefined;
    }
    worker = w;
    stats.workerStarts++;
    startedAt = Date.now();
    answeredSinceStart = false;
    w.unref();
    w.on('message', (res: WorkerResponse) => onMessage(res));
    w.on('error', (err) => log?.warn(`token worker error: ${err instanceof Error ? err.message : String(err)}`));
    w.on('exit', (code) => onExit(w, code));
    return w;
  }

  function noteCrash(): void {
    stats.workerCrashes++;
    crashesInRow++;
    if (crashesInRow >= MAX_CRASHES_IN_ROW) {
      cooldownUntil = Date.now() + CRASH_COOLDOWN_MS;
      crashesInRow = 0;
      log?.warn(`token worker crashed ${MAX_CRASHES_IN_ROW} times in a row; counting by estimate for ${CRASH_COOLDOWN_MS / 1000} s`);
    }
  }

  function finish(p: Pending, counts: number[]): void {
    if (p.timer) clearTimeout(p.timer);
    if (p.watchdog) clearTimeout(p.watchdog);
    const resolve = p.resolve;
    if (resolve) {
      p.resolve = undefined;
      waiting--;
      updateRef();
      resolve(counts);
    }
  }

  function onMessage(res: WorkerResponse): void {
    const p = pending.get(res?.id);
    if (!p) return;
    pending.delete(p.id);
    crashesInRow = 0;
    if (!answeredSinceStart) {
      answeredSinceStart = true;
      stats.lastColdStartMs = Date.now() - startedAt;
    }
    let counts: number[];
    if ('error' in res || !Array.isArray(res.counts) || res.counts.length !== p.texts.length) {
      counts = estimateAll(p.texts);
      stats.estimatedTexts += p.texts.length;
    } else {
      const estimated = new Set(res.estimated ?? []);
      counts = res.counts.map((c, i) => {
        const ok = Number.isSafeInteger(c) && c >= 0;
        const value = ok ? c : estimateAll([p.texts[i]])[0];
        const isEstimate = !ok || estimated.has(i);
        if (isEstimate) stats.estimatedTexts++;
        cache.set(p.texts[i], p.encoding, value, isEstimate);
        return value;
      });
    }
    finish(p, counts);
    if (pending.size === 0) scheduleIdle();
  }

  function onExit(w: Worker, code: number): void {
    if (w === stopping) stopping = undefined;
    const intentional = w !== worker;
    if (!intentional) {
      worker = undefined;
      log?.warn(`token worker exited (code ${code}); it restarts on the next count`);
      noteCrash();
    }
    if (warmedWorker === w) warmedWorker = undefined;
    clearIdle();
    const all = [...pending.values()];
    pending.clear();
    all.forEach((p, i) => {
      const counts = estimateAll(p.texts);
      stats.estimatedTexts += p.texts.length;
      // The oldest request was the one being counted: remember its estimates so the same text does not
      // crash the next worker too. The others are simply answered and will be counted next time.
      if (i === 0 && !intentional) p.texts.forEach((t, j) => cache.set(t, p.encoding, counts[j], true));
      finish(p, counts);
    });
  }

  function send(w: Worker, encoding: EncodingName, texts: string[], wait: boolean): Promise<number[]> {
    return new Promise((resolve) => {
      const id = nextId++;
      const p: Pending = { id, encoding, texts };
      pending.set(id, p);
      clearIdle();
      stats.requests++;
      if (wait) {
        p.resolve = resolve;
        waiting++;
        updateRef();
        p.timer = setTimeout(() => {
          p.timer = undefined;
          if (!p.resolve) return;
          stats.timeouts++;
          stats.estimatedTexts += texts.length;
          log?.debug(`token worker slower than ${timeoutMs} ms; estimating ${texts.length} text(s)`);
          // The answer may still arrive and fill the cache; the caller does not wait for it.
          const r = p.resolve;
          p.resolve = undefined;
          waiting--;
          updateRef();
          r(estimateAll(texts));
        }, timeoutMs);
      } else resolve([]);
      // A worker that never answers (it bounds its own work, so this means a bug) is replaced.
      p.watchdog = setTimeout(
        () => {
          if (pending.has(id) && worker === w) {
            log?.warn('token worker stopped answering; restarting it');
            worker = undefined;
            stopping = w;
            noteCrash();
            void w.terminate();
            // Answer everything now: the exit event of a terminated worker is treated as intentional.
            const all = [...pending.values()];
            pending.clear();
            all.forEach((q, i) => {
              const counts = estimateAll(q.texts);
              if (i === 0) q.texts.forEach((t, j) => cache.set(t, q.encoding, counts[j], true));
              finish(q, counts);
            });
          }
        },
        timeoutMs * 3 + 30_000,
      );
      p.watchdog.unref();
      const msg: WorkerRequest = { id, encoding, texts, budgetMs: Math.max(1, Math.floor(timeoutMs * 0.8)) };
      try {
        w.postMessage(msg);
        for (const t of texts) stats.charsSent += t.length;
        stats.textsSent += texts.length;
      } catch (err) {
        pending.delete(id);
        log?.warn(`token worker postMessage failed: ${err instanceof Error ? err.message : String(err)}`);
        stats.estimatedTexts += texts.length;
        finish(p, estimateAll(texts));
      }
    });
  }

  async function count(texts: readonly string[], encoding: EncodingName = 'o200k_base'): Promise<number[]> {
    const enc: EncodingName = isEncodingName(encoding) ? encoding : 'o200k_base';
    const out = new Array<number>(texts.length);
    let missing: Map<string, number[]> | undefined;
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i];
      if (typeof t !== 'string' || t.length === 0) {
        out[i] = 0;
        continue;
      }
      const v = cache.get(t, enc);
      if (v !== undefined) {
        stats.cacheHits++;
        out[i] = v;
        continue;
      }
      stats.cacheMisses++;
      missing ??= new Map();
      const slots = missing.get(t);
      if (slots) slots.push(i);
      else missing.set(t, [i]);
    }
    if (!missing) return out;
    const uniq = [...missing.keys()];
    let counts: number[];
    try {
      const w = ensureWorker();
      if (w) counts = await send(w, enc, uniq, true);
      else {
        counts = estimateAll(uniq);
        stats.estimatedTexts += uniq.length;
      }
    } catch {
      counts = estimateAll(uniq);
      stats.estimatedTexts += uniq.length;
    }
    uniq.forEach((t, j) => {
      for (const i of missing!.get(t)!) out[i] = counts[j];
    });
    return out;
  }

  return {
    count,
    async countOne(text, encoding) {
      return (await count([text], encoding))[0];
    },
    warm() {
      try {
        const w = ensureWorker();
        if (!w || warmedWorker === w) return;
        warmedWorker = w;
        void send(w, 'o200k_base', [], false);
      } catch {
        /* estimates remain available */
      }
    },
    async dispose() {
      disposed = true;
      clearIdle();
      const all = [...pending.values()];
      pending.clear();
      for (const p of all) finish(p, estimateAll(p.texts));
      cache.clear();
      await stopWorker();
    },
    stats: () => ({
      workerPath: resolvedPath ?? null,
      workerRunning: worker !== undefined,
      ...stats,
      cacheEntries: cache.size,
      cacheChars: cache.totalChars,
      cacheEvictions: cache.evictions,
    }),
  };
}
