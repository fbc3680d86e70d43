/**
 * The ledger's small index: per file, totals per (local day, model, client) and refusals per
 * (local day, client, reason). A year of a heavy user (a million entries) is a few tens of thousands
 * of rows, so totals for any filter are a sum over them, not a pass over the entries.
 *
 * Kept in memory by the Ledger and cached in `.ledger-index/<file>.json` (a cache: deleting it only
 * costs one rebuild). A live file's index is extended from the byte offset it had reached.
 */
import { correctionKey, type LedgerCorrection, type LedgerEntry, type RefusedReason, type RefusedSummary } from './ledgerRecords';

/** The filter every reader takes: exact model, inclusive local days `YYYY-MM-DD`; null = no bound. */
export interface LedgerFilter {
  model: string | null;
  /** Exact client; null or absent = all. */
  client?: string | null;
  from: string | null;
  to: string | null;
}

export const NO_FILTER: Readonly<LedgerFilter> = Object.freeze({ model: null, client: null, from: null, to: null });

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
  /** Ascending by day. */
  byDay: LedgerDay[];
  /** Descending by points, then by requests, then by name. */
  byModel: LedgerModel[];
  /** Descending by points, then by requests, then by name. */
  byClient: LedgerClient[];
}

/** Refusals of one client for one reason on one local day. */
export interface RefusedGroup {
  day: string;
  client: string;
  reason: RefusedReason;
  count: number;
  /** ISO times of the first and last refusal. */
  from: string;
  to: string;
}

/** Totals of one (day, model, client). */
export interface IndexRow {
  day: string;
  model: string;
  client: string;
  requests: number;
  points: number;
  tokensIn: number;
  tokensOut: number;
  estimatedPoints: number;
}

/** `YYYY-MM-DD` of the local calendar day of `date`. */
export function localDay(date: Date): string {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

/** Local day of an ISO time, '' when unparsable. */
export function dayOfTime(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? localDay(new Date(t)) : '';
}

/** `passes` for an entry; its local day is worked out only when the filter has a date range. */
export function entryPasses(filter: LedgerFilter, e: { time: string; model: string; client?: string }): boolean {
  return passes(filter, filter.from === null && filter.to === null ? '' : dayOfTime(e.time), e.model, e.client);
}

/** Whether an entry of local day `day` ('' = unknown) and `model` passes `filter`. */
export function passes(filter: LedgerFilter, day: string, model: string, client?: string): boolean {
  if (filter.model !== null && model !== filter.model) return false;
  if (filter.client != null && client !== undefined && client !== filter.client) return false;
  if (filter.from === null && filter.to === null) return true;
  if (!day) return false; // unparsable time: only counted without a date range
  if (filter.from !== null && day < filter.from) return false;
  if (filter.to !== null && day > filter.to) return false;
  return true;
}

/** Estimated entries kept per file for corrections that arrive later (the newest win beyond this). */
const MAX_PENDING_ESTIMATES = 5_000;

/** An estimated entry a correction may still replace: where it was counted and for how much. */
interface PendingEstimate {
  row: string;
  points: number;
}

/** Aggregates entries, refusals and corrections of one file. */
export class FileSummary {
  readonly rows = new Map<string, IndexRow>();
  readonly refused = new Map<string, RefusedGroup>();
  /** Estimated entries not corrected yet, by `correctionKey`. */
  readonly pending = new Map<string, PendingEstimate>();
  /** Corrections whose entry is not in this file (another file of the same month holds it). */
  readonly orphans: LedgerCorrection[] = [];
  /** Corrections met at all (the CSV export applies them in a first pass only where there are some). */
  corrections = 0;

  addEntry(e: LedgerEntry, day = dayOfTime(e.time)): void {
    const key = `${day}\u0000${e.model}\u0000${e.client}`;
    let r = this.rows.get(key);
    if (!r) this.rows.set(key, (r = { day, model: e.model, client: e.client, requests: 0, points: 0, tokensIn: 0, tokensOut: 0, estimatedPoints: 0 }));
    const points = e.points ?? 0;
    r.requests++;
    r.points += points;
    r.tokensIn += e.tokensIn;
    r.tokensOut += e.tokensOut;
    if (e.pointsEstimated) {
      r.estimatedPoints += points;
      this.pending.set(correctionKey(e.id, e.time), { row: key, points });
      if (this.pending.size > MAX_PENDING_ESTIMATES) this.pending.delete(this.pending.keys().next().value as string);
    }
  }

  /** Books a correction against its entry in this file, or keeps it for the month's other files. */
  addCorrection(c: LedgerCorrection): void {
    this.corrections++;
    if (!this.applyCorrection(c)) this.orphans.push(c);
  }

  /** Moves an estimated entry's points to the actual ones; false when the entry is not pending here. */
  applyCorrection(c: LedgerCorrection): boolean {
    const key = correctionKey(c.id, c.time);
    const p = this.pending.get(key);
    if (!p) return false;
    this.pending.delete(key); // the first correction wins
    const r = this.rows.get(p.row);
    if (r) {
      r.points += c.points - p.points;
      r.estimatedPoints -= p.points;
    }
    return true;
  }

  addRefused(s: RefusedSummary): void {
    const day = dayOfTime(s.from);
    const key = `${day}\u0000${s.client}\u0000${s.reason}`;
    const g = this.refused.get(key);
    if (!g) {
      this.refused.set(key, { day, client: s.client, reason: s.reason, count: s.count, from: s.from, to: s.to });
      return;
    }
    g.count += s.count;
    if (s.from < g.from) g.from = s.from;
    if (s.to > g.to) g.to = s.to;
  }

  /** Any entry passing `filter`. */
  matches(filter: LedgerFilter): boolean {
    for (const r of this.rows.values()) if (r.requests > 0 && passes(filter, r.day, r.model, r.client)) return true;
    return false;
  }

  toJSON(): { rows: IndexRow[]; refused: RefusedGroup[]; pending: Array<[string, PendingEstimate]>; orphans: LedgerCorrection[]; corrections: number } {
    return {
      rows: [...this.rows.values()],
      refused: [...this.refused.values()],
      pending: [...this.pending],
      orphans: this.orphans,
      corrections: this.corrections,
    };
  }

  static fromJSON(v: unknown): FileSummary | undefined {
    if (!v || typeof v !== 'object') return undefined;
    const o = v as { rows?: unknown; refused?: unknown; pending?: unknown; orphans?: unknown; corrections?: unknown };
    if (!Array.isArray(o.rows) || !Array.isArray(o.refused) || !Array.isArray(o.pending) || !Array.isArray(o.orphans)) return undefined;
    const s = new FileSummary();
    for (const r of o.rows as IndexRow[]) s.rows.set(`${r.day}\u0000${r.model}\u0000${r.client}`, { ...r });
    for (const g of o.refused as RefusedGroup[]) s.refused.set(`${g.day}\u0000${g.client}\u0000${g.reason}`, { ...g });
    for (const [k, p] of o.pending as Array<[string, PendingEstimate]>) s.pending.set(k, p);
    s.orphans.push(...(o.orphans as LedgerCorrection[]));
    s.corrections = typeof o.corrections === 'number' ? o.corrections : 0;
    return s;
  }

  /** A deep copy (a month's orphan corrections are applied to copies, never to the cached indexes). */
  clone(): FileSummary {
    return FileSummary.fromJSON(JSON.parse(JSON.stringify(this)))!;
  }
}

function byPointsThenName<T extends { points: number; requests: number }>(name: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => b.points - a.points || b.requests - a.requests || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);
}

/** Totals by day, model and client of every row passing `filter`. */
export function summarizeRows(rows: Iterable<IndexRow>, filter: LedgerFilter = NO_FILTER): LedgerSummary {
  const totals: LedgerTotals = { requests: 0, points: 0, tokensIn: 0, tokensOut: 0, estimatedPoints: 0 };
  const days = new Map<string, LedgerDay>();
  const models = new Map<string, LedgerModel>();
  const clients = new Map<string, LedgerClient>();
  const add = (t: { requests: number; points: number; tokensIn: number; tokensOut: number }, r: IndexRow): void => {
    t.requests += r.requests;
    t.points += r.points;
    t.tokensIn += r.tokensIn;
    t.tokensOut += r.tokensOut;
  };
  for (const r of rows) {
    if (!passes(filter, r.day, r.model, r.client)) continue;
    add(totals, r);
    totals.estimatedPoints += r.estimatedPoints;
    if (r.day) {
      let d = days.get(r.day);
      if (!d) days.set(r.day, (d = { day: r.day, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }));
      add(d, r);
    }
    let m = models.get(r.model);
    if (!m) models.set(r.model, (m = { model: r.model, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }));
    add(m, r);
    let c = clients.get(r.client);
    if (!c) clients.set(r.client, (c = { client: r.client, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }));
    add(c, r);
  }
  return {
    totals,
    byDay: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0)),
    byModel: [...models.values()].sort(byPointsThenName((m) => m.model)),
    byClient: [...clients.values()].sort(byPointsThenName((c) => c.client)),
  };
}

/** Totals by day (local time), model and client of `entries`. */
export function summarize(entries: readonly LedgerEntry[]): LedgerSummary {
  const s = new FileSummary();
  for (const e of entries) s.addEntry(e);
  return summarizeRows(s.rows.values());
}

/** Refusal groups within `filter`'s days and client (none when it names a model: refusals have none), newest first. */
export function refusedGroups(groups: Iterable<RefusedGroup>, filter: LedgerFilter, max: number): { groups: RefusedGroup[]; total: number } {
  if (filter.model !== null) return { groups: [], total: 0 };
  const merged = new Map<string, RefusedGroup>();
  let total = 0;
  for (const g of groups) {
    if (!passes({ model: null, client: filter.client, from: filter.from, to: filter.to }, g.day, '', g.client)) continue;
    total += g.count;
    const key = `${g.day}\u0000${g.client}\u0000${g.reason}`;
    const m = merged.get(key);
    if (!m) merged.set(key, { ...g });
    else {
      m.count += g.count;
      if (g.from < m.from) m.from = g.from;
      if (g.to > m.to) m.to = g.to;
    }
  }
  const sorted = [...merged.values()].sort((a, b) => (a.to < b.to ? 1 : a.to > b.to ? -1 : 0));
  return { groups: sorted.slice(0, max), total };
}
