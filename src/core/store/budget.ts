/**
 * Spending budgets: points spent today and this month (the user's local calendar), kept as a running
 * total in memory — seeded once from the ledger, then moved by each recorded request and each correction
 * of an estimate — so a request's budget check never reads the ledger.
 */
import { localDay, type LedgerEntry } from './ledger';

export type BudgetPeriod = 'daily' | 'monthly';

export interface BudgetState {
  period: BudgetPeriod;
  spent: number;
  budget: number;
  /** spent / budget. */
  ratio: number;
}

/** At this share of a budget the footer warns (and VS Code notifies once). */
export const BUDGET_WARN_RATIO = 0.8;

export interface BudgetLimits {
  pointsBudgetDaily: number;
  pointsBudgetMonthly: number;
}

export class SpendTracker {
  /** Points by local day (`YYYY-MM-DD`); only the current and previous month are kept. */
  private readonly byDay = new Map<string, number>();

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** Counts a ledger entry (actual points where known, else the estimate). */
  add(e: Pick<LedgerEntry, 'time' | 'points'>): void {
    this.move(e.time, e.points ?? 0);
  }

  /** Points already spent on a local day `YYYY-MM-DD` (seeded from the ledger's index at start). */
  addDay(day: string, points: number): void {
    if (!Number.isFinite(points) || points === 0) return;
    this.byDay.set(day, (this.byDay.get(day) ?? 0) + points);
    this.prune();
  }

  /** An estimate of a request made at `time` was replaced by the actual points. */
  correct(time: string, estimate: number, actual: number): void {
    this.move(time, actual - estimate);
  }

  /** Today's and this month's spend, local time. */
  spent(): { today: number; month: number } {
    const today = localDay(new Date(this.now()));
    const month = today.slice(0, 7);
    let m = 0;
    for (const [day, pts] of this.byDay) if (day.startsWith(month)) m += pts;
    return { today: this.byDay.get(today) ?? 0, month: m };
  }

  /** Each budget that is on, with its spend (plus `extra` points not booked yet); the fullest first. */
  states(limits: BudgetLimits, extra = 0): BudgetState[] {
    const spent = this.spent();
    const today = spent.today + extra;
    const month = spent.month + extra;
    const out: BudgetState[] = [];
    if (limits.pointsBudgetDaily > 0) out.push({ period: 'daily', spent: today, budget: limits.pointsBudgetDaily, ratio: today / limits.pointsBudgetDaily });
    if (limits.pointsBudgetMonthly > 0)
      out.push({ period: 'monthly', spent: month, budget: limits.pointsBudgetMonthly, ratio: month / limits.pointsBudgetMonthly });
    return out.sort((a, b) => b.ratio - a.ratio);
  }

  /** The budget that is used up (requests must not reach Poe), else undefined. */
  exhausted(limits: BudgetLimits): BudgetState | undefined {
    return this.states(limits).find((s) => s.spent >= s.budget);
  }

  /** Budgets at or past the warning share (with `extra` points not booked yet). */
  nearlyExhausted(limits: BudgetLimits, extra = 0): BudgetState[] {
    return this.states(limits, extra).filter((s) => s.ratio >= BUDGET_WARN_RATIO);
  }

  private move(time: string, points: number): void {
    if (!Number.isFinite(points) || points === 0) return;
    const t = new Date(time);
    if (Number.isNaN(t.getTime())) return;
    this.addDay(localDay(t), points);
  }

  private prune(): void {
    if (this.byDay.size <= 62) return;
    const now = new Date(this.now());
    const keepFrom = localDay(new Date(now.getFullYear(), now.getMonth() - 1, 1));
    for (const day of this.byDay.keys()) if (day < keepFrom) this.byDay.delete(day);
  }
}

/** Start of the local calendar month of `now` (what a seed must read from the ledger). */
export function startOfLocalMonth(now: number): Date {
  const d = new Date(now);
  return new Date(d.getFullYear(), d.getMonth(), 1);
}

const PERIOD_NAME: Record<BudgetPeriod, { label: string; setting: string; env: string; when: string }> = {
  daily: { label: 'daily', setting: 'poeProxy.pointsBudgetDaily', env: 'POINTS_BUDGET_DAILY', when: 'at local midnight' },
  monthly: { label: 'monthly', setting: 'poeProxy.pointsBudgetMonthly', env: 'POINTS_BUDGET_MONTHLY', when: 'on the 1st of next month' },
};

/** The "paused" answer for a used-up budget: which one, and how to raise it. */
export function budgetPausedText(s: BudgetState, fmt: (n: number) => string): string {
  const p = PERIOD_NAME[s.period];
  return (
    `⏸ Poe proxy paused: your ${p.label} points budget of ${fmt(s.budget)} is used up (${fmt(s.spent)} spent). ` +
    `Nothing was sent to Poe and no points were spent. It resets ${p.when}; to continue now, raise the budget ` +
    `(VS Code setting "${p.setting}"; headless: ${p.env}, 0 turns it off).`
  );
}

/** The footer's warning for a budget at 80% or more. */
export function budgetWarningText(s: BudgetState, fmt: (n: number) => string): string {
  const p = PERIOD_NAME[s.period];
  return `${Math.floor(s.ratio * 100)}% of your ${p.label} points budget used (${fmt(s.spent)} of ${fmt(s.budget)}); at 100% the proxy pauses (${p.env} / "${p.setting}").`;
}
