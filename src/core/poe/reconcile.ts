/**
 * The points reconciler: requests booked with estimated points (nothing waited for Poe's lagging
 * points_history) keep being matched against it in the background — paging back with `starting_after`
 * as far as the oldest one needs, backing off while nothing new turns up — and each match is booked as a
 * ledger correction. An entry is never given to two requests: the claimed set is shared with the live
 * matcher in PoeUsage and seeded from the ledger's query ids after a restart.
 */
import type { LedgerCorrection, LedgerEntry } from '../store/ledger';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { DEFAULT_MATCH_SLACK_MS, isNonApiUsage, type PointsEntry, type PoeUsage } from './usage';

export interface ReconcilerOptions {
  usage: Pick<PoeUsage, 'pointsPage' | 'isClaimed' | 'markClaimed'>;
  /** Books one correction (the ledger append, the running totals). */
  correct(c: LedgerCorrection): void;
  /** Estimates older than this are given up (Poe keeps 30 days; a request it never charged never shows up). */
  maxAgeMs: number;
  logger?: Logger;
  now?: () => number;
  /** First delay after new work, and the back-off's floor (default 2 s). */
  minDelayMs?: number;
  /** The back-off's ceiling while nothing matches (default 5 min). */
  maxDelayMs?: number;
  /** points_history pages one pass may read (default 20, 100 entries each). */
  maxPages?: number;
  /**
   * Paging back past the last `recentMs` (default 10 min) to estimates that may never show up (a request
   * Poe did not charge) happens at most once per `deepEveryMs` (default 60 s), so one such estimate does
   * not make every pass read many pages.
   */
  recentMs?: number;
  deepEveryMs?: number;
  slackMs?: number;
}

interface PendingEstimate {
  id: string;
  time: string;
  bot: string;
  from: number;
  to: number;
  finishedAt: number;
  estimate: number;
}

export class PointsReconciler {
  private readonly pending = new Map<string, PendingEstimate>();
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly maxPages: number;
  private readonly slack: number;
  private delay: number;
  private lastDeepPass = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = Infinity;
  private running: Promise<number> | undefined;
  private disposed = false;

  constructor(private readonly opts: ReconcilerOptions) {
    this.now = opts.now ?? (() => Date.now());
    this.logger = opts.logger ?? silentLogger;
    this.minDelay = Math.max(1, opts.minDelayMs ?? 2_000);
    this.maxDelay = Math.max(this.minDelay, opts.maxDelayMs ?? 300_000);
    this.maxPages = Math.max(1, opts.maxPages ?? 20);
    this.slack = opts.slackMs ?? DEFAULT_MATCH_SLACK_MS;
    this.delay = this.minDelay;
  }

  /** Estimates still waiting for their actual points. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** After a restart: the ledger's query ids are taken, its uncorrected estimates are pending again. */
  seed(entries: readonly LedgerEntry[]): void {
    for (const e of entries) if (e.queryId) this.opts.usage.markClaimed(e.queryId);
    for (const e of entries) this.track(e);
    if (this.pending.size > 0) this.schedule(this.minDelay);
  }

  /** A newly recorded entry: reconciled later when its points are an estimate. */
  add(e: LedgerEntry): void {
    if (e.queryId) this.opts.usage.markClaimed(e.queryId);
    if (!this.track(e)) return;
    this.delay = this.minDelay;
    this.schedule(this.minDelay);
  }

  /** One pass now (tests and shutdown drive it; otherwise a timer does). Resolves with the entries matched. */
  runOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private track(e: LedgerEntry): boolean {
    if (!e.pointsEstimated || e.points === null || !e.id || !e.model) return false;
    const startedAt = Date.parse(e.time);
    if (!Number.isFinite(startedAt)) return false;
    const finishedAt = startedAt + Math.max(0, e.durationMs);
    if (this.now() - finishedAt > this.opts.maxAgeMs) return false;
    this.pending.set(`${e.id}\u0000${e.time}`, {
      id: e.id,
      time: e.time,
      bot: e.model.toLowerCase(),
      from: startedAt - this.slack,
      to: finishedAt + this.slack,
      finishedAt,
      estimate: e.points,
    });
    return true;
  }

  private schedule(delay: number): void {
    if (this.disposed || this.pending.size === 0) return;
    const due = this.now() + delay;
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      void this.runOnce().then(() => this.schedule(this.delay));
    }, delay);
    this.timer.unref?.();
  }

  private async pass(): Promise<number> {
    this.dropExpired();
    if (this.disposed || this.pending.size === 0) return 0;
    const now = this.now();
    const all = [...this.pending.values()];
    const recent = all.filter((p) => now - p.finishedAt <= (this.opts.recentMs ?? 600_000));
    const deep = recent.length < all.length && now - this.lastDeepPass >= (this.opts.deepEveryMs ?? 60_000);
    if (deep || recent.length === 0) this.lastDeepPass = now;
    const oldest = Math.min(...(deep || recent.length === 0 ? all : recent).map((p) => p.from));
    const entries: PointsEntry[] = [];
    let after: string | undefined;
    let failed = false;
    for (let page = 0; page < this.maxPages; page++) {
      const got = await this.opts.usage.pointsPage({ limit: 100, startingAfter: after });
      if (this.disposed) return 0;
      if (!got) {
        failed = true;
        break;
      }
      entries.push(...got.entries);
      const last = got.entries.at(-1);
      // Most recent first: stop once the page reaches back past the oldest estimate's window.
      if (!got.hasMore || !last || last.creation_time / 1000 < oldest) break;
      after = last.query_id;
    }
    const matched = this.match(entries);
    this.delay = matched > 0 && !failed ? this.minDelay : Math.min(this.maxDelay, this.delay * 2);
    return matched;
  }

  /**
   * Closest pairs first (entry time to the request's end), so out-of-order arrivals do not swap points.
   * Per bot, the estimates are sorted by window start, so each entry only looks at the windows that can
   * hold it (a burst of thousands does not cost estimates × entries comparisons).
   */
  private match(entries: readonly PointsEntry[]): number {
    const byBot = new Map<string, { list: Array<{ key: string; p: PendingEstimate }>; maxSpan: number }>();
    for (const [key, p] of this.pending) {
      let g = byBot.get(p.bot);
      if (!g) byBot.set(p.bot, (g = { list: [], maxSpan: 0 }));
      g.list.push({ key, p });
      g.maxSpan = Math.max(g.maxSpan, p.to - p.from);
    }
    for (const g of byBot.values()) g.list.sort((a, b) => a.p.from - b.p.from);
    const pairs: { p: PendingEstimate; key: string; e: PointsEntry; d: number }[] = [];
    for (const e of entries) {
      if (this.opts.usage.isClaimed(e.query_id) || isNonApiUsage(e)) continue;
      const g = byBot.get(e.bot_name.toLowerCase());
      if (!g) continue;
      const t = e.creation_time / 1000;
      // First window starting after t; walk back over those that may still reach t.
      let lo = 0;
      let hi = g.list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (g.list[mid].p.from <= t) lo = mid + 1;
        else hi = mid;
      }
      for (let j = lo - 1; j >= 0 && g.list[j].p.from >= t - g.maxSpan; j--) {
        const { key, p } = g.list[j];
        if (t <= p.to) pairs.push({ p, key, e, d: Math.abs(t - p.finishedAt) });
      }
    }
    pairs.sort((a, b) => a.d - b.d);
    let matched = 0;
    for (const { p, key, e } of pairs) {
      if (!this.pending.has(key) || this.opts.usage.isClaimed(e.query_id)) continue;
      this.opts.usage.markClaimed(e.query_id);
      this.pending.delete(key);
      matched++;
      this.opts.correct({ id: p.id, time: p.time, points: e.cost_points, estimate: p.estimate, queryId: e.query_id, at: new Date(this.now()).toISOString() });
    }
    if (matched > 0)
      this.logger.debug(`reconciler: booked the actual points of ${matched} estimated request${matched === 1 ? '' : 's'}; ${this.pending.size} pending`);
    return matched;
  }

  private dropExpired(): void {
    const now = this.now();
    let dropped = 0;
    for (const [key, p] of this.pending) {
      if (now - p.finishedAt > this.opts.maxAgeMs) {
        this.pending.delete(key);
        dropped++;
      }
    }
    if (dropped > 0)
      this.logger.info(`reconciler: ${dropped} request${dropped === 1 ? '' : 's'} never appeared in Poe's points history; their points stay estimated`);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}
