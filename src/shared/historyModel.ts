/**
 * Pure view-model logic of the cost-history webview: filtering, paging, incremental totals, sorting,
 * chart geometry and cell formatting. Shared by the host (`src/vscode/historyPanel.ts`) and the
 * webview script (`src/webview/history.ts`), so it must stay free of `vscode`, DOM and node imports
 * (type-only imports are fine).
 */
import type { LedgerClient, LedgerDay, LedgerModel, LedgerSummary, RefusedGroup } from '../core/store/ledgerIndex';
// ledgerIndex and ledgerRecords are pure (no node imports): the webview bundles and type-checks them
// (src/webview/tsconfig.json has the DOM lib and no node types).
import { refusedReasonText, type LedgerEntry } from '../core/store/ledgerRecords';
import type { EntryCursor, HistoryFilter, SortState } from './historyProtocol';

/** Identity of an entry for de-duplication (ids are unique in practice; time guards against reuse). */
export function entryKey(e: { time: string; id: string }): string {
  return `${e.time}\u0000${e.id}`;
}

/** Whether an entry whose host-local day is `day` ('' = unknown) passes `filter`. */
export function matchesFilter(entry: LedgerEntry, day: string, filter: HistoryFilter): boolean {
  if (filter.model !== null && entry.model !== filter.model) return false;
  if (filter.client != null && entry.client !== filter.client) return false;
  if (filter.from === null && filter.to === null) return true;
  if (!day) return false; // unparsable time: only shown without a date range
  if (filter.from !== null && day < filter.from) return false;
  if (filter.to !== null && day > filter.to) return false;
  return true;
}

/** Entries (any order, kept) that pass `filter`; `dayOf` gives an entry's local day or ''. */
export function applyFilter(entries: readonly LedgerEntry[], filter: HistoryFilter, dayOf: (e: LedgerEntry) => string): LedgerEntry[] {
  if (filter.model === null && filter.client == null && filter.from === null && filter.to === null) return entries.slice();
  return entries.filter((e) => matchesFilter(e, dayOf(e), filter));
}

export interface Page {
  /** Oldest first. */
  entries: LedgerEntry[];
  /** Older entries exist before `entries`. */
  hasMore: boolean;
}

/** The newest `size` entries of `entries` (oldest first). */
export function latestPage(entries: readonly LedgerEntry[], size: number): Page {
  const n = Math.max(0, Math.floor(size));
  const start = Math.max(0, entries.length - n);
  return { entries: entries.slice(start), hasMore: start > 0 };
}

/**
 * The `size` entries just before `cursor` in `entries` (oldest first, file order). The cursor is found
 * by time and id (the newest match); when it is gone (rotated away), the page holds what is strictly
 * older than the cursor's time.
 */
export function pageBefore(entries: readonly LedgerEntry[], cursor: EntryCursor, size: number): Page {
  let end = -1;
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].id === cursor.id && entries[i].time === cursor.time) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    const t = Date.parse(cursor.time);
    if (!Number.isFinite(t)) return { entries: [], hasMore: false };
    end = 0;
    for (let i = entries.length - 1; i >= 0; i--) {
      const et = Date.parse(entries[i].time);
      if (Number.isFinite(et) && et < t) {
        end = i + 1;
        break;
      }
    }
  }
  const n = Math.max(0, Math.floor(size));
  const start = Math.max(0, end - n);
  return { entries: entries.slice(start, end), hasMore: start > 0 };
}

export function emptySummary(): LedgerSummary {
  return { totals: { requests: 0, points: 0, tokensIn: 0, tokensOut: 0, estimatedPoints: 0 }, byDay: [], byModel: [], byClient: [] };
}

function byModelOrder(a: LedgerModel, b: LedgerModel): number {
  return b.points - a.points || b.requests - a.requests || (a.model < b.model ? -1 : a.model > b.model ? 1 : 0);
}

/** A day's, model's or client's bucket with one more entry counted in it (a new object). */
function withEntry<B extends { requests: number; points: number; tokensIn: number; tokensOut: number }>(bucket: B, e: LedgerEntry, points: number): B {
  return {
    ...bucket,
    requests: bucket.requests + 1,
    points: bucket.points + points,
    tokensIn: bucket.tokensIn + e.tokensIn,
    tokensOut: bucket.tokensOut + e.tokensOut,
  };
}

/**
 * `summary` plus one entry (a new object; the input is not changed). Same rules as `summarize` in
 * core/ledger.ts: null points count as 0; an entry without a `day` counts in totals and by model only.
 */
export function addToSummary(summary: LedgerSummary, e: LedgerEntry, day: string): LedgerSummary {
  const points = e.points ?? 0;
  const t = summary.totals;
  const totals = {
    requests: t.requests + 1,
    points: t.points + points,
    tokensIn: t.tokensIn + e.tokensIn,
    tokensOut: t.tokensOut + e.tokensOut,
    estimatedPoints: t.estimatedPoints + (e.pointsEstimated ? points : 0),
  };
  let byDay: LedgerDay[] = summary.byDay;
  if (day) {
    const add = (d: LedgerDay): LedgerDay => withEntry(d, e, points);
    const i = summary.byDay.findIndex((d) => d.day >= day);
    if (i >= 0 && summary.byDay[i].day === day) {
      byDay = summary.byDay.map((d, j) => (j === i ? add(d) : d));
    } else {
      const fresh = add({ day, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 });
      byDay = i < 0 ? [...summary.byDay, fresh] : [...summary.byDay.slice(0, i), fresh, ...summary.byDay.slice(i)];
    }
  }
  const found = summary.byModel.find((m) => m.model === e.model);
  const updated: LedgerModel = withEntry(found ?? { model: e.model, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }, e, points);
  const byModel = [...summary.byModel.filter((m) => m !== found), updated].sort(byModelOrder);
  const clients = summary.byClient ?? [];
  const foundClient = clients.find((c) => c.client === e.client);
  const updatedClient: LedgerClient = withEntry(foundClient ?? { client: e.client, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }, e, points);
  const byClient = [...clients.filter((c) => c !== foundClient), updatedClient].sort(
    (a, b) => b.points - a.points || b.requests - a.requests || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0),
  );
  return { totals, byDay, byModel, byClient };
}

// ---- sorting -----------------------------------------------------------------------------------

type Key = number | string | null;

function sortKeyOf(e: LedgerEntry, key: SortState['key']): Key {
  switch (key) {
    case 'time': {
      const t = Date.parse(e.time);
      return Number.isFinite(t) ? t : null;
    }
    case 'model':
      return e.model.toLowerCase();
    case 'status':
      return e.status;
    case 'points':
      return e.points;
    case 'balanceAfter':
      return e.balanceAfter;
    default:
      return e[key];
  }
}

function cmpKeys(a: Key, b: Key): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/**
 * Sorted copy of `entries` (given in file order, oldest first). Ascending keeps file order among equal
 * keys; descending is its exact reverse (so among equal keys the newest comes first). Entries without
 * a value (no points, no balance, bad time) go last either way.
 */
export function sortEntries(entries: readonly LedgerEntry[], sort: SortState): LedgerEntry[] {
  const withKey = entries.map((e) => ({ e, k: sortKeyOf(e, sort.key) }));
  const present = withKey.filter((x) => x.k !== null).sort((a, b) => cmpKeys(a.k, b.k));
  const missing = withKey.filter((x) => x.k === null);
  if (sort.dir === 'desc') {
    present.reverse();
    missing.reverse();
  }
  return [...present, ...missing].map((x) => x.e);
}

/**
 * Where a new entry (newer in file order than every row) goes in `rows` sorted by `sortEntries(…, sort)`,
 * so that the result equals sorting everything again.
 */
export function insertionIndex(rows: readonly LedgerEntry[], entry: LedgerEntry, sort: SortState): number {
  const k = sortKeyOf(entry, sort.key);
  for (let i = 0; i < rows.length; i++) {
    const rk = sortKeyOf(rows[i], sort.key);
    if (k === null) {
      // Missing values sit at the end: last among them when ascending, first when descending.
      if (sort.dir === 'desc' && rk === null) return i;
      continue;
    }
    if (rk === null) return i;
    const c = cmpKeys(rk, k);
    if (sort.dir === 'asc' ? c > 0 : c <= 0) return i;
  }
  return rows.length;
}

// ---- chart -------------------------------------------------------------------------------------

/** `day` moved by `n` calendar days (`YYYY-MM-DD` arithmetic, no time zone involved). */
export function addDays(day: string, n: number): string {
  const [y, m, d] = day.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return `${t.getUTCFullYear()}-${String(t.getUTCMonth() + 1).padStart(2, '0')}-${String(t.getUTCDate()).padStart(2, '0')}`;
}

/** Whole days from `a` to `b` (b − a). */
export function daysBetween(a: string, b: string): number {
  const ms = (s: string): number => {
    const [y, m, d] = s.split('-').map(Number);
    return Date.UTC(y, m - 1, d);
  };
  return Math.round((ms(b) - ms(a)) / 86_400_000);
}

export interface ChartBar {
  x: number;
  y: number;
  w: number;
  h: number;
  /** First and last day of the bar (equal when one bar is one day). */
  from: string;
  to: string;
  points: number;
  requests: number;
}

export interface ChartGeometry {
  width: number;
  height: number;
  plot: { left: number; top: number; right: number; bottom: number };
  /** Days per bar (1 unless the range is longer than `maxBars` days). */
  bucketDays: number;
  /** Top of the value axis. */
  max: number;
  bars: ChartBar[];
  yTicks: Array<{ y: number; value: number }>;
  xLabels: Array<{ x: number; text: string }>;
}

export interface ChartOptions {
  width: number;
  height: number;
  /** Most bars drawn; longer ranges are bucketed into several days per bar. Default 90. */
  maxBars?: number;
  /** Most x-axis labels. Default 6. */
  maxLabels?: number;
  /** Widest bar, so a few days do not turn into slabs. Default 48. */
  maxBarWidth?: number;
}

/** A "nice" step (1, 2, 2.5 or 5 × 10^k) at least `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw - 1e-9 * p) return m * p;
  return 10 * p;
}

/**
 * Bars of points per day (days without requests are drawn as empty slots), in SVG user units.
 * `byDay` must be ascending (as in `LedgerSummary`).
 */
export function buildChart(byDay: readonly LedgerDay[], opts: ChartOptions): ChartGeometry {
  const plot = { left: 56, top: 10, right: opts.width - 8, bottom: opts.height - 24 };
  const maxBars = Math.max(1, Math.floor(opts.maxBars ?? 90));
  const maxLabels = Math.max(1, Math.floor(opts.maxLabels ?? 6));
  const maxBarWidth = Math.max(1, opts.maxBarWidth ?? 48);
  const empty: ChartGeometry = { width: opts.width, height: opts.height, plot, bucketDays: 1, max: 0, bars: [], yTicks: [], xLabels: [] };
  if (byDay.length === 0) return empty;

  const first = byDay[0].day;
  const last = byDay[byDay.length - 1].day;
  const span = daysBetween(first, last) + 1;
  const bucketDays = Math.ceil(span / maxBars);
  const count = Math.ceil(span / bucketDays);
  const buckets = Array.from({ length: count }, (_, i) => ({
    from: addDays(first, i * bucketDays),
    to: addDays(first, Math.min(span - 1, (i + 1) * bucketDays - 1)),
    points: 0,
    requests: 0,
  }));
  for (const d of byDay) {
    const i = Math.floor(daysBetween(first, d.day) / bucketDays);
    if (i < 0 || i >= count) continue;
    buckets[i].points += d.points;
    buckets[i].requests += d.requests;
  }

  const top = Math.max(0, ...buckets.map((b) => b.points));
  const step = niceStep(top > 0 ? top / 4 : 1);
  const max = Math.max(step, Math.ceil(top / step - 1e-9) * step);
  const plotW = plot.right - plot.left;
  const plotH = plot.bottom - plot.top;
  const slot = plotW / count;
  const barW = Math.max(1, Math.min(slot * 0.8, slot - 1 > 0 ? slot - 1 : slot, maxBarWidth));
  const bars = buckets.map((b, i) => {
    const h = max > 0 ? (b.points / max) * plotH : 0;
    return { x: plot.left + i * slot + (slot - barW) / 2, y: plot.bottom - h, w: barW, h, ...b };
  });
  const yTicks: ChartGeometry['yTicks'] = [];
  for (let v = 0; v <= max + 1e-9; v += step) yTicks.push({ y: plot.bottom - (v / max) * plotH, value: Number(v.toPrecision(12)) });
  const every = Math.ceil(count / maxLabels);
  const xLabels: ChartGeometry['xLabels'] = [];
  for (let i = 0; i < count; i += every) xLabels.push({ x: plot.left + (i + 0.5) * slot, text: buckets[i].from.slice(5) });
  return { width: opts.width, height: opts.height, plot, bucketDays, max, bars, yTicks, xLabels };
}

// ---- formatting --------------------------------------------------------------------------------

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const fracFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** Grouped number; fractions only when the value has them (up to 2 digits). */
export function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Number.isInteger(n) ? intFmt.format(n) : fracFmt.format(n);
}

/** "1 request", "2,100 requests". */
export function requestCount(n: number): string {
  return `${formatNumber(n)} request${n === 1 ? '' : 's'}`;
}

/** Compact number for chart axes: 1.2k, 3.4M. */
export function formatCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e6) return `${Number((n / 1e6).toFixed(1))}M`;
  if (a >= 1e4) return `${Number((n / 1e3).toFixed(1))}k`;
  return formatNumber(n);
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
}

/** `YYYY-MM-DD HH:MM:SS` in the viewer's local time; the raw text when unparsable. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `MM-DD HH:MM` in local time, for narrow views (the full time is in the cell's title); the raw text when unparsable. */
export function formatShortTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** What "actual" and "est." mean in the Kind column (its header's tooltip and the legend under "Requests"). */
export const POINTS_KIND_HELP =
  "actual: Poe's own figure, from its usage history. est.: estimated from the tokens and the model's price in models.yaml, because Poe had not listed the request yet.";

/** 'actual' (measured by Poe), 'est.' (estimated) or '' (no points known). */
export function pointsKind(e: LedgerEntry): 'actual' | 'est.' | '' {
  if (e.points === null) return '';
  return e.pointsEstimated ? 'est.' : 'actual';
}

/** The details of a request a row folds away: its failure reason first, then HTTP status, endpoint, … */
export function entryDetails(e: LedgerEntry): string[] {
  const out: string[] = [];
  if (e.error) out.push(e.error);
  out.push(`HTTP ${e.httpStatus}`, e.endpoint);
  if (e.stream) out.push('stream');
  if (e.clipped) out.push('context clipped');
  if (e.retries) out.push(`${e.retries} retr${e.retries === 1 ? 'y' : 'ies'}`);
  if (e.client) out.push(`client ${e.client}`);
  return out;
}

/** Human label of a status. */
export function statusLabel(s: LedgerEntry['status']): string {
  return s === 'rate_limited' ? 'rate limited' : s;
}

/** File name suggested for a CSV export of `filter`. */
export function exportFileName(filter: HistoryFilter, today: string): string {
  const parts = ['poe-cost-history'];
  if (filter.model) parts.push(filter.model.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60));
  if (filter.from || filter.to) parts.push(`${filter.from ?? 'start'}_to_${filter.to ?? today}`);
  else parts.push(today);
  return `${parts.join('-')}.csv`;
}

/** `HH:MM` of an ISO time in the viewer's local time. */
function clock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '?';
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** "1,240 requests refused by the rate limit, 2025-03-20 14:02–14:03, from aider". */
export function refusedText(g: RefusedGroup): string {
  const span = clock(g.from) === clock(g.to) ? clock(g.from) : `${clock(g.from)}–${clock(g.to)}`;
  return `${requestCount(g.count)} ${refusedReasonText(g.reason)}, ${g.day} ${span}, from ${g.client || 'unknown client'}`;
}
