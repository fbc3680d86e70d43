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
   * The pairs are taken in the order a sort of all (entry, estimate) pairs by distance would give
   * (ties: entries in page order, then estimates by window start, latest first), but generated
   * lazily: each entry offers its nearest free estimate from a heap and moves on only when that one is
   * taken. A burst of thousands of requests inside one window costs about entries + estimates heap
   * steps instead of entries × estimates pairs (the bench's 1,000 requests a second made millions).
   */
  private match(entries: readonly PointsEntry[]): number {
    const byBot = new Map<string, Candidate[]>();
    for (const [key, p] of this.pending) {
      let list = byBot.get(p.bot);
      if (!list) byBot.set(p.bot, (list = []));
      list.push({ key, p, rank: 0 });
    }
    const groups = new Map<string, { byEnd: Candidate[]; maxSpan: number }>();
    for (const [bot, list] of byBot) {
      // The rank is the position by window start (stable): among equally close estimates, the later start goes first.
      list.sort((a, b) => a.p.from - b.p.from);
      let maxSpan = 0;
      list.forEach((c, i) => {
        c.rank = i;
        maxSpan = Math.max(maxSpan, c.p.to - c.p.from);
      });
      groups.set(bot, { byEnd: [...list].sort((a, b) => a.p.finishedAt - b.p.finishedAt), maxSpan });
    }
    const heap = new PairHeap();
    entries.forEach((e, index) => {
      if (this.opts.usage.isClaimed(e.query_id) || isNonApiUsage(e)) return;
      const g = groups.get(e.bot_name.toLowerCase());
      if (!g) return;
      const near = new NearestEstimates(g.byEnd, e.creation_time / 1000, g.maxSpan, index, e);
      const first = near.next();
      if (first) heap.push(first);
    });
    let matched = 0;
    for (let pair = heap.pop(); pair; pair = heap.pop()) {
      const { e, c } = pair;
      if (this.opts.usage.isClaimed(e.query_id)) continue;
      if (!this.pending.has(c.key)) {
        const next = pair.from.next();
        if (next) heap.push(next);
        continue;
      }
      const p = c.p;
      this.opts.usage.markClaimed(e.query_id);
      this.pending.delete(c.key);
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

interface Candidate {
  key: string;
  p: PendingEstimate;
  /** Position by window start: breaks ties between equally close estimates (higher first). */
  rank: number;
}

interface Pair {
  d: number;
  index: number;
  e: PointsEntry;
  c: Candidate;
  from: NearestEstimates;
}

/** One entry's estimates whose window holds it, nearest end first (ties by rank, highest first). */
class NearestEstimates {
  private left: number;
  private right: number;
  private readonly ready: Candidate[] = [];
  private readyD = 0;

  constructor(
    private readonly byEnd: readonly Candidate[],
    private readonly t: number,
    private readonly maxSpan: number,
    private readonly index: number,
    private readonly e: PointsEntry,
  ) {
    let lo = 0;
    let hi = byEnd.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byEnd[mid].p.finishedAt <= t) lo = mid + 1;
      else hi = mid;
    }
    this.left = lo - 1;
    this.right = lo;
  }

  next(): Pair | undefined {
    const { byEnd, t } = this;
    while (this.ready.length === 0) {
      // Left: ended at or before t; its window holds t while t <= to, and `to` falls with the end.
      const dl = this.left >= 0 && t <= byEnd[this.left].p.to ? t - byEnd[this.left].p.finishedAt : Infinity;
      // Right: ended after t; a window starts at most maxSpan before its end, so past that none holds t.
      const dr = this.right < byEnd.length && byEnd[this.right].p.finishedAt - t <= this.maxSpan ? byEnd[this.right].p.finishedAt - t : Infinity;
      if (dl === Infinity && dr === Infinity) return undefined;
      const d = Math.min(dl, dr);
      while (this.left >= 0 && t - byEnd[this.left].p.finishedAt === d) this.offer(byEnd[this.left--]);
      while (this.right < byEnd.length && byEnd[this.right].p.finishedAt - t === d) this.offer(byEnd[this.right++]);
      this.ready.sort((a, b) => a.rank - b.rank); // popped from the end: highest rank first
      this.readyD = d;
    }
    const c = this.ready.pop()!;
    return { d: this.readyD, index: this.index, e: this.e, c, from: this };
  }

  private offer(c: Candidate): void {
    if (c.p.from <= this.t && this.t <= c.p.to) this.ready.push(c);
  }
}

/** A binary min-heap of pairs by (distance, entry's page position). */
class PairHeap {
  private readonly items: Pair[] = [];

  push(x: Pair): void {
    const a = this.items;
    a.push(x);
    for (let i = a.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (!before(a[i], a[up])) break;
      [a[i], a[up]] = [a[up], a[i]];
      i = up;
    }
  }

  pop(): Pair | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Each entry has at most one pair in the heap, so distance and page position order them completely. */
function before(x: Pair, y: Pair): boolean {
  return x.d !== y.d ? x.d < y.d : x.index < y.index;
}
