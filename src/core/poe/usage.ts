/**
 * Poe's Usage API: the point balance (cached, coalesced) and matching a finished request to its
 * `points_history` entry (coalesced polling, each entry given to one request only).
 *
 * Nothing here throws to callers or keeps the process alive: failures are logged and reported as
 * `undefined`, every timer is unref()ed, and `dispose()` cancels timers, in-flight fetches and waiters.
 */
import { upstreamHint } from '../http/errors';
import type { Logger } from '../log';
import { describeError as describe, notifyAll } from '../listeners';
import { silentLogger } from '../log';

/** GET `path` (e.g. `/usage/current_balance`) on Poe's API root with the key; resolves with the parsed JSON body. */
export type FetchJson = (path: string, signal?: AbortSignal) => Promise<{ status: number; body: unknown }>;

export interface PointsEntry {
  /** Unix microseconds. */
  creation_time: number;
  bot_name: string;
  query_id: string;
  usage_type?: string;
  cost_points: number;
}

export interface PoeUsageOptions {
  fetchJson: FetchJson;
  /** How long a fetched balance is served from cache. */
  balanceTtlMs: number;
  /** Default of how long `matchPoints` waits for the entry before giving up (0 = do not match at all). */
  pointsWaitMs: number;
  /** A balance fetch is abandoned after this long (default 3 s); the last known balance stays in force. */
  balanceTimeoutMs?: number;
  logger?: Logger;
  now?: () => number;
  /** Delay between two `points_history` polls while someone waits (default 250 ms). */
  pollIntervalMs?: number;
  /** Clock-skew allowance around a request's [startedAt, finishedAt] window (default 2000 ms). */
  matchSlackMs?: number;
  /** Delay of the background refresh asked for by `refreshBalanceSoon` (default 1000 ms). */
  refreshDelayMs?: number;
  /** A single Usage API call is abandoned after this long (default 10 s). */
  fetchTimeoutMs?: number;
  /** After a 401, matching is skipped for this long unless a later call succeeds (default 60 s). */
  authRetryMs?: number;
}

/**
 * Why the last balance fetch failed (cleared by the next success): Poe refused the key (401), could not
 * be reached (network, DNS, timeout), or answered something else. `message` says so in the words a client
 * of the proxy gets for the same failure.
 */
export interface BalanceProblem {
  kind: 'key-rejected' | 'unreachable' | 'error';
  message: string;
  /** When it was seen (ms since the epoch). */
  at: number;
}

export interface Disposable {
  dispose(): void;
}

interface Waiter {
  seq: number;
  bot: string;
  from: number;
  to: number;
  finishedAt: number;
  done: boolean;
  resolve: (e: PointsEntry | undefined) => void;
  timer?: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Claimed query_ids remembered; far more than the reconciler's horizon of requests. */
export const MAX_CLAIMED = 20_000;
/** No single API request costs this much; an entry claiming more is a broken upstream. */
export const MAX_PLAUSIBLE_POINTS = 10_000_000;
export const DEFAULT_POLL_INTERVAL_MS = 250;
/** Pages of points_history one poll may read while a burst of requests waits. */
const MAX_POLL_PAGES = 5;
export const DEFAULT_MATCH_SLACK_MS = 2_000;

const BALANCE_PATH = '/usage/current_balance';

function unref(t: unknown): void {
  (t as { unref?: () => void } | undefined)?.unref?.();
}

/** Entries of usage types that are not API calls (Poe's web chat, canvas apps) never match a proxied request. */
export function isNonApiUsage(e: PointsEntry): boolean {
  return typeof e.usage_type === 'string' && /chat|canvas/i.test(e.usage_type);
}

/** Why an entry's cost cannot be booked (negative, fractional or absurd), else undefined. */
export function implausibleCost(points: number): string | undefined {
  if (points < 0) return 'negative';
  if (!Number.isInteger(points)) return 'not a whole number';
  if (points > MAX_PLAUSIBLE_POINTS) return `above ${MAX_PLAUSIBLE_POINTS}`;
  return undefined;
}

/**
 * The well-formed entries of a points_history body. Entries with an implausible `cost_points` are left
 * out (they would book negative or absurd spend) and passed to `onRejected`.
 */
export function parsePointsHistory(body: unknown, onRejected?: (e: PointsEntry, why: string) => void): PointsEntry[] | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const data = (body as { data?: unknown }).data;
  if (!Array.isArray(data)) return undefined;
  const out: PointsEntry[] = [];
  for (const item of data) {
    if (!item || typeof item !== 'object') continue;
    const r = item as Record<string, unknown>;
    if (
      typeof r.creation_time !== 'number' ||
      !Number.isFinite(r.creation_time) ||
      typeof r.bot_name !== 'string' ||
      typeof r.query_id !== 'string' ||
      typeof r.cost_points !== 'number' ||
      !Number.isFinite(r.cost_points)
    ) {
      continue;
    }
    const e: PointsEntry = { creation_time: r.creation_time, bot_name: r.bot_name, query_id: r.query_id, cost_points: r.cost_points };
    if (typeof r.usage_type === 'string') e.usage_type = r.usage_type;
    const why = implausibleCost(e.cost_points);
    if (why) onRejected?.(e, why);
    else out.push(e);
  }
  return out;
}

export class PoeUsage {
  private readonly fetchJson: FetchJson;
  private readonly balanceTtlMs: number;
  private readonly pointsWaitMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly pollIntervalMs: number;
  private readonly slackMs: number;
  private readonly refreshDelayMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly authRetryMs: number;
  private readonly balanceTimeoutMs: number;

  private balance: { value: number; fetchedAt: number } | undefined;
  private balanceInFlight: Promise<number | undefined> | undefined;
  private inFlightStartedAt = 0;
  private spentDuringFetch = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshRequestedAt = 0;
  private readonly balanceListeners = new Set<(value: number) => void>();
  /** The last balance fetch failed (the cached balance, if any, is older than it should be). */
  private balanceFetchFailed = false;
  /** A request is already waiting for the first reading: the others decide without one. */
  private firstReadingWaiter = false;
  private readonly rejectedLogged = new Set<string>();
  private problem: BalanceProblem | undefined;
  private readonly problemListeners = new Set<(problem: BalanceProblem | undefined) => void>();

  private waiters: Waiter[] = [];
  private seq = 0;
  private pollInFlight = false;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly claimed = new Set<string>();
  private authFailedAt: number | undefined;
  private pollFailures = 0;

  private readonly controllers = new Set<AbortController>();
  private disposed = false;

  constructor(opts: PoeUsageOptions) {
    this.fetchJson = opts.fetchJson;
    this.balanceTtlMs = Math.max(0, opts.balanceTtlMs);
    this.pointsWaitMs = Math.max(0, opts.pointsWaitMs);
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? (() => Date.now());
    this.pollIntervalMs = Math.max(1, opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.slackMs = Math.max(0, opts.matchSlackMs ?? DEFAULT_MATCH_SLACK_MS);
    this.refreshDelayMs = Math.max(0, opts.refreshDelayMs ?? 1_000);
    this.fetchTimeoutMs = Math.max(1, opts.fetchTimeoutMs ?? 10_000);
    this.authRetryMs = Math.max(0, opts.authRetryMs ?? 60_000);
    this.balanceTimeoutMs = Math.max(1, opts.balanceTimeoutMs ?? 3_000);
  }

  // ---- balance ---------------------------------------------------------------------------------

  /** The last known balance (adjusted by `noteSpent`); `fetchedAt` is when the fetch that produced it started. */
  cachedBalance(): { value: number; fetchedAt: number } | undefined {
    return this.balance ? { ...this.balance } : undefined;
  }

  /** Why the last balance fetch failed; `undefined` after a success (or before any fetch). */
  balanceProblem(): BalanceProblem | undefined {
    return this.problem ? { ...this.problem } : undefined;
  }

  /** Fires when a balance fetch fails for a new reason, or succeeds after failing. */
  onDidChangeBalanceProblem(listener: (problem: BalanceProblem | undefined) => void): Disposable {
    this.problemListeners.add(listener);
    return { dispose: () => void this.problemListeners.delete(listener) };
  }

  /**
   * The balance, from cache when younger than `maxAgeMs` (default: the TTL). Concurrent callers share one
   * fetch. `undefined` when it cannot be fetched (logged); never rejects.
   */
  getBalance(opts: { maxAgeMs?: number } = {}): Promise<number | undefined> {
    if (this.disposed) return Promise.resolve(undefined);
    const maxAge = opts.maxAgeMs ?? this.balanceTtlMs;
    const c = this.balance;
    if (c && this.now() - c.fetchedAt < maxAge) return Promise.resolve(c.value);
    if (this.balanceInFlight) return this.balanceInFlight;
    const p = this.fetchBalance();
    this.balanceInFlight = p;
    void p.finally(() => {
      if (this.balanceInFlight === p) this.balanceInFlight = undefined;
    });
    return p;
  }

  /**
   * The balance a guard decides on, without ever stalling on the Usage API: the last known balance (kept
   * when a refresh fails: failing open would let spending through), refreshed in the background when older
   * than the TTL. Before any reading, one caller waits for the first fetch (bounded by `balanceTimeoutMs`);
   * others get `undefined` at once. `refreshFailed`: the newest attempt to refresh it failed.
   */
  async balanceForGuard(): Promise<{ value: number; refreshFailed: boolean } | undefined> {
    if (this.disposed) return undefined;
    const c = this.balance;
    if (c) {
      if (this.now() - c.fetchedAt >= this.balanceTtlMs) void this.getBalance();
      return { value: c.value, refreshFailed: this.balanceFetchFailed };
    }
    if (this.firstReadingWaiter || this.authBlocked()) {
      void this.getBalance();
      return undefined;
    }
    this.firstReadingWaiter = true;
    try {
      const v = await this.getBalance();
      return v === undefined ? undefined : { value: v, refreshFailed: false };
    } finally {
      this.firstReadingWaiter = false;
    }
  }

  /** Whether the newest balance fetch failed. */
  get balanceRefreshFailed(): boolean {
    return this.balanceFetchFailed;
  }

  /** Asks for a fresh balance shortly (one fetch for a burst of calls, started after the last of them). */
  refreshBalanceSoon(): void {
    if (this.disposed || this.authBlocked()) return; // after a 401, do not hammer the API after every request
    this.refreshRequestedAt = this.now();
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refreshNow(this.refreshRequestedAt);
    }, this.refreshDelayMs);
    unref(this.refreshTimer);
  }

  /** Lowers the cached balance by `points` at once (the next fetch corrects any difference). */
  noteSpent(points: number): void {
    if (this.disposed || !Number.isFinite(points) || points <= 0) return;
    if (this.balanceInFlight) this.spentDuringFetch = true;
    if (!this.balance) return;
    this.balance = { value: Math.max(0, this.balance.value - points), fetchedAt: this.balance.fetchedAt };
    this.emitBalance(this.balance.value);
  }

  onDidChangeBalance(listener: (value: number) => void): Disposable {
    this.balanceListeners.add(listener);
    return { dispose: () => void this.balanceListeners.delete(listener) };
  }

  private async refreshNow(requestedAt: number): Promise<void> {
    // A fetch that started before the request that asked for this refresh may miss its cost: wait it out.
    if (this.balanceInFlight && this.inFlightStartedAt < requestedAt) await this.balanceInFlight;
    if (this.disposed) return;
    if (this.balance && this.balance.fetchedAt >= requestedAt) return;
    await this.getBalance({ maxAgeMs: 0 });
  }

  private async fetchBalance(): Promise<number | undefined> {
    const startedAt = this.now();
    this.inFlightStartedAt = startedAt;
    this.spentDuringFetch = false;
    const failed = (): undefined => {
      this.balanceFetchFailed = true;
      return undefined;
    };
    try {
      const res = await this.request(BALANCE_PATH, this.balanceTimeoutMs);
      if (this.disposed) return undefined;
      if (res.status === 401) {
        this.markAuthFailed();
        return failed();
      }
      if (res.status < 200 || res.status >= 300) {
        this.logger.warn(`usage: current_balance answered HTTP ${res.status}`);
        this.setProblem('error', `Poe's balance endpoint answered HTTP ${res.status}. ${upstreamHint(res.status)}`);
        return failed();
      }
      const value = (res.body as { current_point_balance?: unknown } | null)?.current_point_balance;
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        this.logger.warn('usage: current_balance answered without a numeric current_point_balance');
        this.setProblem('error', "Poe's balance endpoint answered without a balance.");
        return failed();
      }
      this.authFailedAt = undefined;
      this.balanceFetchFailed = false;
      this.setProblem(undefined);
      const previous = this.balance?.value;
      this.balance = { value, fetchedAt: startedAt };
      if (previous !== value) this.emitBalance(value);
      // Someone spent while we were asking: our answer may predate that; ask again shortly.
      if (this.spentDuringFetch) this.refreshBalanceSoon();
      return value;
    } catch (err) {
      if (this.disposed) return undefined;
      this.logger.warn(`usage: could not fetch the point balance: ${describe(err)}`);
      this.setProblem('unreachable', `Could not get an answer from Poe: ${describe(err)}. Check your network and the Poe base URL, then retry.`);
      return failed();
    }
  }

  private setProblem(kind: BalanceProblem['kind'] | undefined, message = ''): void {
    const prev = this.problem;
    if (kind === undefined) {
      if (!prev) return;
      this.problem = undefined;
    } else {
      this.problem = { kind, message, at: this.now() };
      if (prev && prev.kind === kind && prev.message === message) return;
    }
    notifyAll(this.problemListeners, this.balanceProblem(), this.logger, 'usage: onDidChangeBalanceProblem');
  }

  private emitBalance(value: number): void {
    notifyAll(this.balanceListeners, value, this.logger, 'usage: onDidChangeBalance');
  }

  // ---- points matching -------------------------------------------------------------------------

  /**
   * Waits (up to `pointsWaitMs`) for the `points_history` entry of a finished request: same bot
   * (case-insensitive), created within [startedAt − slack, finishedAt + slack], not given to anyone before.
   * `undefined` on timeout, abort, 401 or dispose; never rejects.
   */
  matchPoints(req: { botName: string; startedAt: number; finishedAt: number; signal?: AbortSignal; waitMs?: number }): Promise<PointsEntry | undefined> {
    const waitMs = Math.max(0, req.waitMs ?? this.pointsWaitMs);
    if (this.disposed || waitMs <= 0 || req.signal?.aborted || this.authBlocked()) return Promise.resolve(undefined);
    return new Promise<PointsEntry | undefined>((resolve) => {
      const w: Waiter = {
        seq: ++this.seq,
        bot: req.botName.toLowerCase(),
        from: Math.min(req.startedAt, req.finishedAt) - this.slackMs,
        to: Math.max(req.startedAt, req.finishedAt) + this.slackMs,
        finishedAt: req.finishedAt,
        done: false,
        resolve,
      };
      w.timer = setTimeout(() => this.settle(w, undefined), waitMs);
      unref(w.timer);
      if (req.signal) {
        w.signal = req.signal;
        w.onAbort = () => this.settle(w, undefined);
        req.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
      if (!this.pollInFlight && !this.pollTimer) void this.poll();
    });
  }

  private settle(w: Waiter, entry: PointsEntry | undefined): void {
    if (w.done) return;
    w.done = true;
    if (w.timer) clearTimeout(w.timer);
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    if (this.waiters.length === 0 && this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    w.resolve(entry);
  }

  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    if (this.disposed || this.waiters.length === 0) return;
    this.pollInFlight = true;
    let entries: PointsEntry[] | undefined;
    // One page normally; larger pages, and the next ones (has_more), while many requests wait at once,
    // so a burst never pushes a waiter's entry off the first page.
    const limit = Math.min(100, Math.max(20, this.waiters.length * 2));
    const oldestWanted = Math.min(...this.waiters.map((w) => w.from));
    try {
      let after: string | undefined;
      for (let page = 0; page < MAX_POLL_PAGES; page++) {
        const res = await this.request(`/usage/points_history?limit=${limit}${after ? `&starting_after=${encodeURIComponent(after)}` : ''}`);
        if (res.status === 401) {
          this.pollInFlight = false;
          this.markAuthFailed();
          for (const w of [...this.waiters]) this.settle(w, undefined);
          return;
        }
        if (res.status < 200 || res.status >= 300) {
          this.logPollFailure(`points_history answered HTTP ${res.status}`);
          break;
        }
        const got = this.parseHistory(res.body);
        if (!got) {
          this.logPollFailure('points_history answered an unexpected body');
          break;
        }
        entries = [...(entries ?? []), ...got];
        const last = got.at(-1);
        const hasMore = (res.body as { has_more?: unknown } | null)?.has_more === true;
        // Most recent first: stop once the page reaches back past the oldest waiter's window.
        if (!hasMore || !last || last.creation_time / 1000 < oldestWanted) break;
        after = last.query_id;
      }
    } catch (err) {
      if (!this.disposed) this.logPollFailure(`could not fetch points_history: ${describe(err)}`);
    } finally {
      this.pollInFlight = false;
    }
    if (this.disposed) return;
    if (entries) {
      this.pollFailures = 0;
      this.assign(entries);
    }
    if (this.waiters.length > 0 && !this.pollTimer) {
      this.pollTimer = setTimeout(() => void this.poll(), this.pollIntervalMs);
      unref(this.pollTimer);
    }
  }

  /** Oldest waiter first, each gets the unclaimed candidate closest to its finishedAt. */
  private assign(entries: PointsEntry[]): void {
    const candidates = entries.filter((e) => !this.claimed.has(e.query_id) && !isNonApiUsage(e));
    if (candidates.length === 0) return;
    const byAge = [...this.waiters].sort((a, b) => a.seq - b.seq);
    for (const w of byAge) {
      let best: PointsEntry | undefined;
      let bestDistance = Infinity;
      for (const e of candidates) {
        if (this.claimed.has(e.query_id) || e.bot_name.toLowerCase() !== w.bot) continue;
        const t = e.creation_time / 1000;
        if (t < w.from || t > w.to) continue;
        const d = Math.abs(t - w.finishedAt);
        if (d < bestDistance) {
          best = e;
          bestDistance = d;
        }
      }
      if (best) {
        this.claim(best.query_id);
        this.settle(w, best);
      }
    }
  }

  /**
   * One page of points_history (most recent first), for the reconciler: `undefined` when it could not be
   * read (logged once per failure streak) or the key was rejected.
   */
  async pointsPage(opts: { limit?: number; startingAfter?: string } = {}): Promise<{ entries: PointsEntry[]; hasMore: boolean } | undefined> {
    if (this.disposed || this.authBlocked()) return undefined;
    const limit = Math.min(100, Math.max(1, opts.limit ?? 100));
    try {
      const res = await this.request(
        `/usage/points_history?limit=${limit}${opts.startingAfter ? `&starting_after=${encodeURIComponent(opts.startingAfter)}` : ''}`,
      );
      if (res.status === 401) {
        this.markAuthFailed();
        return undefined;
      }
      if (res.status < 200 || res.status >= 300) {
        this.logPollFailure(`points_history answered HTTP ${res.status}`);
        return undefined;
      }
      const entries = this.parseHistory(res.body);
      if (!entries) {
        this.logPollFailure('points_history answered an unexpected body');
        return undefined;
      }
      this.pollFailures = 0;
      return { entries, hasMore: (res.body as { has_more?: unknown } | null)?.has_more === true };
    } catch (err) {
      if (!this.disposed) this.logPollFailure(`could not fetch points_history: ${describe(err)}`);
      return undefined;
    }
  }

  /** Whether a points_history entry was already given to a request (live or by the reconciler). */
  isClaimed(queryId: string): boolean {
    return this.claimed.has(queryId);
  }

  /** Marks entries as given to a request (the reconciler, and query ids read back from the ledger). */
  markClaimed(queryId: string): void {
    this.claim(queryId);
  }

  private parseHistory(body: unknown): PointsEntry[] | undefined {
    return parsePointsHistory(body, (e, why) => {
      if (this.rejectedLogged.has(e.query_id)) return;
      if (this.rejectedLogged.size >= MAX_CLAIMED) this.rejectedLogged.clear();
      this.rejectedLogged.add(e.query_id);
      this.logger.warn(`usage: ignored points_history entry ${e.query_id} for ${e.bot_name}: cost_points ${e.cost_points} is ${why}`);
    });
  }

  private claim(queryId: string): void {
    this.claimed.add(queryId);
    while (this.claimed.size > MAX_CLAIMED) {
      const oldest = this.claimed.values().next().value;
      if (oldest === undefined) break;
      this.claimed.delete(oldest);
    }
  }

  private logPollFailure(message: string): void {
    this.pollFailures++;
    // Once per streak at warn level, the rest at debug so a flaky API does not flood the log.
    if (this.pollFailures === 1) this.logger.warn(`usage: ${message}`);
    else this.logger.debug(`usage: ${message}`);
  }

  private markAuthFailed(): void {
    if (this.authFailedAt === undefined) {
      this.logger.warn('usage: Poe rejected the API key on the Usage API (401); balance and points will not be shown (points are estimated).');
    }
    this.authFailedAt = this.now();
    this.setProblem('key-rejected', upstreamHint(401));
  }

  private authBlocked(): boolean {
    return this.authFailedAt !== undefined && this.now() - this.authFailedAt < this.authRetryMs;
  }

  // ---- plumbing --------------------------------------------------------------------------------

  /** fetchJson with a timeout and dispose-abort; settles even if fetchJson ignores its signal. */
  private request(path: string, timeoutMs = this.fetchTimeoutMs): Promise<{ status: number; body: unknown }> {
    const ac = new AbortController();
    this.controllers.add(ac);
    return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ac.signal.removeEventListener('abort', onAbort);
        this.controllers.delete(ac);
        fn();
      };
      const onAbort = (): void => finish(() => reject(ac.signal.reason instanceof Error ? ac.signal.reason : new Error('aborted')));
      const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      unref(timer);
      ac.signal.addEventListener('abort', onAbort, { once: true });
      let p: Promise<{ status: number; body: unknown }>;
      try {
        p = this.fetchJson(path, ac.signal);
      } catch (err) {
        finish(() => reject(err));
        return;
      }
      Promise.resolve(p).then(
        (res) => finish(() => resolve(res)),
        (err: unknown) => finish(() => reject(err)),
      );
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    for (const ac of [...this.controllers]) ac.abort(new Error('disposed'));
    this.controllers.clear();
    for (const w of [...this.waiters]) this.settle(w, undefined);
    this.balanceListeners.clear();
    this.problemListeners.clear();
  }
}
