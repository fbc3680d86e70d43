/**
 * The message protocol between the cost-history webview (`src/webview/history.ts`) and its host
 * (`src/vscode/historyPanel.ts`). Imported by both sides, so it holds no `vscode` import and no
 * import of node modules (its ledger types come from the pure ledgerIndex/ledgerRecords, which the
 * webview's tsconfig checks without node types).
 *
 * The webview is untrusted: the host checks every incoming message with `isFromWebview` and drops
 * anything else. The webview checks incoming messages with `isToWebview` too (cheap, and it keeps a
 * half-updated host from crashing the script).
 *
 * Days are `YYYY-MM-DD` **local calendar days of the extension host** (same as `LedgerSummary.byDay`);
 * a filter's `from`/`to` are inclusive.
 */
import type { LedgerSummary, RefusedGroup } from '../core/store/ledgerIndex';
import type { LedgerEntry, LedgerStatus, RefusedReason } from '../core/store/ledgerRecords';

/** Rows sent per page (initial load and each "load more"). */
export const PAGE_SIZE = 2000;
/** Most rows a restored webview may ask for at once in `ready.rows` (it had loaded that many before). */
export const MAX_RESTORE_ROWS = 20_000;
/** Longest model name accepted in a filter. */
export const MAX_MODEL_CHARS = 256;

export interface HistoryFilter {
  /** Exact model name, or null for all models. */
  model: string | null;
  /** Exact client (the tool that sent the request), or null/absent for all clients. */
  client?: string | null;
  /** First day shown (inclusive), `YYYY-MM-DD`, or null for no lower bound. */
  from: string | null;
  /** Last day shown (inclusive), `YYYY-MM-DD`, or null for no upper bound. */
  to: string | null;
}

export const EMPTY_FILTER: Readonly<HistoryFilter> = Object.freeze({ model: null, from: null, to: null });

/** Identifies one ledger entry for paging: the oldest row the webview holds. */
export interface EntryCursor {
  time: string;
  id: string;
}

export type SortKey = 'time' | 'model' | 'tokensIn' | 'tokensOut' | 'points' | 'balanceAfter' | 'status' | 'durationMs';
export type SortDir = 'asc' | 'desc';
export interface SortState {
  key: SortKey;
  dir: SortDir;
}
export const SORT_KEYS: readonly SortKey[] = ['time', 'model', 'tokensIn', 'tokensOut', 'points', 'balanceAfter', 'status', 'durationMs'];

/** What the webview keeps with `vscode.setState` (restored after hide/show and window reload). */
export interface HistoryWebviewState {
  filter: HistoryFilter;
  sort: SortState;
  scrollY: number;
  /** Rows loaded (with "load more") when the state was saved; asked for again on restore. */
  rows: number;
}

// ---- host → webview ----------------------------------------------------------------------------

/**
 * Months whose totals are still being counted (after an upgrade, a lost index or a time-zone change):
 * the totals sent with it leave them out; a `totals` message follows as they are counted.
 */
export interface CountingProgress {
  /** Months not counted yet, `YYYY-MM` ('' for a file of no month), newest first. */
  months: string[];
  /** Months in this round of counting, the counted ones included. */
  total: number;
}

/** Full (re)load: answer to `ready` and `setFilter`. `summary` covers every entry matching `filter`. */
export interface InitMessage {
  type: 'init';
  requestId: number;
  filter: HistoryFilter;
  /** Newest matching entries, oldest first (at most the rows asked for). */
  entries: LedgerEntry[];
  summary: LedgerSummary;
  /** Every model in the ledger (for the filter list), sorted. */
  models: string[];
  /** Every client in the ledger (for the filter list), sorted. */
  clients?: string[];
  /** Older matching entries exist beyond `entries`. */
  hasMore: boolean;
  /** Requests refused before reaching Poe within the filter's days, grouped per day, client and reason, newest first. */
  refused: RefusedGroup[];
  /** Every refused request within the filter's days (`refused` may be cut short). */
  refusedTotal: number;
  /** Present while older months are still being counted: `summary`, `models`, `clients` and the refusals are partial. */
  pending?: CountingProgress;
}

/**
 * New totals for `filter` (the rows stay): sent as older months are counted, until one without
 * `pending`. The webview drops it when its filter changed meanwhile.
 */
export interface TotalsMessage {
  type: 'totals';
  filter: HistoryFilter;
  summary: LedgerSummary;
  models: string[];
  clients: string[];
  refused: RefusedGroup[];
  refusedTotal: number;
  pending?: CountingProgress;
}

/** One new ledger entry (live update). `day` is its host-local day ('' if its time is unparsable). */
export interface AppendMessage {
  type: 'append';
  entry: LedgerEntry;
  day: string;
}

/** Answer to `loadMore`: the page just older than the cursor, oldest first. */
export interface MoreMessage {
  type: 'more';
  requestId: number;
  entries: LedgerEntry[];
  hasMore: boolean;
}

export interface ExportResultMessage {
  type: 'exportResult';
  ok: boolean;
  /** Where the file went (ok). */
  path?: string;
  /** Rows written (ok). */
  count?: number;
  /** The user closed the save dialog (not ok, no error). */
  cancelled?: boolean;
  error?: string;
}

/** The ledger changed identity (e.g. settings changed): the webview should request its data again. */
export interface RefreshMessage {
  type: 'refresh';
}

export interface ErrorMessage {
  type: 'error';
  message: string;
}

export type ToWebview = InitMessage | TotalsMessage | AppendMessage | MoreMessage | ExportResultMessage | RefreshMessage | ErrorMessage;

// ---- webview → host ----------------------------------------------------------------------------

/** The script started (first show, or shown again after being hidden). Carries its restored state. */
export interface ReadyMessage {
  type: 'ready';
  requestId: number;
  filter: HistoryFilter;
  /** Rows wanted (restored "load more" depth); the host clamps to [PAGE_SIZE, MAX_RESTORE_ROWS]. */
  rows: number;
}

export interface SetFilterMessage {
  type: 'setFilter';
  requestId: number;
  filter: HistoryFilter;
}

export interface LoadMoreMessage {
  type: 'loadMore';
  requestId: number;
  filter: HistoryFilter;
  before: EntryCursor;
}

export interface RequestExportMessage {
  type: 'requestExport';
  filter: HistoryFilter;
}

/** The next steps the empty view offers (each maps to one fixed command on the host side). */
export const NEXT_STEPS = ['copyBaseUrl', 'configureClient', 'walkthrough'] as const;
export type NextStep = (typeof NEXT_STEPS)[number];

export interface NextStepMessage {
  type: 'nextStep';
  step: NextStep;
}

export type FromWebview = ReadyMessage | SetFilterMessage | LoadMoreMessage | RequestExportMessage | NextStepMessage;

// ---- runtime guards ----------------------------------------------------------------------------

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar day written `YYYY-MM-DD` (rejects 2025-02-30). */
export function isDay(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const m = DAY.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1) return false;
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isRequestId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isShortString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

export function isHistoryFilter(v: unknown): v is HistoryFilter {
  if (!isRecord(v)) return false;
  if (v.model !== null && !isShortString(v.model, MAX_MODEL_CHARS)) return false;
  if (v.client !== undefined && v.client !== null && !isShortString(v.client, MAX_MODEL_CHARS)) return false;
  if (v.from !== null && !isDay(v.from)) return false;
  if (v.to !== null && !isDay(v.to)) return false;
  return true;
}

export function isEntryCursor(v: unknown): v is EntryCursor {
  return isRecord(v) && isShortString(v.time, 64) && typeof v.id === 'string' && v.id.length <= 256;
}

/** Checks a message from the webview. Extra properties are tolerated but never used. */
export function isFromWebview(msg: unknown): msg is FromWebview {
  if (!isRecord(msg)) return false;
  switch (msg.type) {
    case 'ready':
      return isRequestId(msg.requestId) && isHistoryFilter(msg.filter) && typeof msg.rows === 'number' && Number.isSafeInteger(msg.rows) && msg.rows >= 0;
    case 'setFilter':
      return isRequestId(msg.requestId) && isHistoryFilter(msg.filter);
    case 'loadMore':
      return isRequestId(msg.requestId) && isHistoryFilter(msg.filter) && isEntryCursor(msg.before);
    case 'requestExport':
      return isHistoryFilter(msg.filter);
    case 'nextStep':
      return (NEXT_STEPS as readonly unknown[]).includes(msg.step);
    default:
      return false;
  }
}

const STATUSES: readonly LedgerStatus[] = ['ok', 'error', 'aborted', 'paused', 'refused', 'rate_limited'];
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isNumOrNull = (v: unknown): boolean => v === null || isNum(v);

/** Structural check of a ledger entry (the webview uses it on what the host sends). */
export function isLedgerEntry(v: unknown): v is LedgerEntry {
  return (
    isRecord(v) &&
    typeof v.time === 'string' &&
    typeof v.id === 'string' &&
    typeof v.model === 'string' &&
    typeof v.endpoint === 'string' &&
    typeof v.stream === 'boolean' &&
    STATUSES.includes(v.status as LedgerStatus) &&
    isNum(v.httpStatus) &&
    isNum(v.tokensIn) &&
    isNum(v.tokensOut) &&
    isNumOrNull(v.points) &&
    typeof v.pointsEstimated === 'boolean' &&
    isNumOrNull(v.balanceAfter) &&
    isNum(v.durationMs) &&
    typeof v.clipped === 'boolean' &&
    isNum(v.retries) &&
    typeof v.client === 'string' &&
    (v.error === undefined || typeof v.error === 'string')
  );
}

function isSummary(v: unknown): v is LedgerSummary {
  if (!isRecord(v) || !isRecord(v.totals) || !Array.isArray(v.byDay) || !Array.isArray(v.byModel)) return false;
  const t = v.totals;
  if (![t.requests, t.points, t.tokensIn, t.tokensOut, t.estimatedPoints].every(isNum)) return false;
  const counts = (r: Record<string, unknown>): boolean => [r.requests, r.points, r.tokensIn, r.tokensOut].every(isNum);
  return (
    v.byDay.every((d) => isRecord(d) && isDay(d.day) && counts(d)) &&
    v.byModel.every((m) => isRecord(m) && typeof m.model === 'string' && counts(m)) &&
    (v.byClient === undefined || (Array.isArray(v.byClient) && v.byClient.every((c) => isRecord(c) && typeof c.client === 'string' && counts(c))))
  );
}

const isEntries = (v: unknown): v is LedgerEntry[] => Array.isArray(v) && v.every(isLedgerEntry);

const REASONS: readonly RefusedReason[] = ['rate_limit', 'paused', 'over_budget', 'invalid_request', 'gate', 'aborted', 'error'];

export function isRefusedGroup(v: unknown): v is RefusedGroup {
  return (
    isRecord(v) &&
    (v.day === '' || isDay(v.day)) &&
    typeof v.client === 'string' &&
    REASONS.includes(v.reason as RefusedReason) &&
    isNum(v.count) &&
    typeof v.from === 'string' &&
    typeof v.to === 'string'
  );
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

export function isCountingProgress(v: unknown): v is CountingProgress {
  return (
    isRecord(v) &&
    Array.isArray(v.months) &&
    v.months.every((m) => m === '' || (typeof m === 'string' && MONTH.test(m))) &&
    typeof v.total === 'number' &&
    Number.isSafeInteger(v.total) &&
    v.total >= v.months.length
  );
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The overview both `init` and `totals` carry. */
function isOverview(msg: Record<string, unknown>): boolean {
  return (
    isHistoryFilter(msg.filter) &&
    isSummary(msg.summary) &&
    isStrings(msg.models) &&
    Array.isArray(msg.refused) &&
    msg.refused.every(isRefusedGroup) &&
    isNum(msg.refusedTotal) &&
    (msg.pending === undefined || isCountingProgress(msg.pending))
  );
}

/** Checks a message from the host. */
export function isToWebview(msg: unknown): msg is ToWebview {
  if (!isRecord(msg)) return false;
  switch (msg.type) {
    case 'init':
      return isRequestId(msg.requestId) && isEntries(msg.entries) && typeof msg.hasMore === 'boolean' && isOverview(msg);
    case 'totals':
      return isStrings(msg.clients) && isOverview(msg);
    case 'append':
      return isLedgerEntry(msg.entry) && typeof msg.day === 'string' && (msg.day === '' || isDay(msg.day));
    case 'more':
      return isRequestId(msg.requestId) && isEntries(msg.entries) && typeof msg.hasMore === 'boolean';
    case 'exportResult':
      return (
        typeof msg.ok === 'boolean' &&
        (msg.path === undefined || typeof msg.path === 'string') &&
        (msg.count === undefined || isNum(msg.count)) &&
        (msg.cancelled === undefined || typeof msg.cancelled === 'boolean') &&
        (msg.error === undefined || typeof msg.error === 'string')
      );
    case 'refresh':
      return true;
    case 'error':
      return typeof msg.message === 'string';
    default:
      return false;
  }
}

/** Restored webview state, or undefined when it is missing or malformed. */
export function parseWebviewState(v: unknown): HistoryWebviewState | undefined {
  if (!isRecord(v) || !isHistoryFilter(v.filter) || !isRecord(v.sort)) return undefined;
  const { key, dir } = v.sort;
  if (!SORT_KEYS.includes(key as SortKey) || (dir !== 'asc' && dir !== 'desc')) return undefined;
  const scrollY = isNum(v.scrollY) && v.scrollY >= 0 ? v.scrollY : 0;
  const rows = isNum(v.rows) && v.rows >= 0 ? Math.floor(v.rows) : 0;
  return { filter: { model: v.filter.model, from: v.filter.from, to: v.filter.to }, sort: { key: key as SortKey, dir }, scrollY, rows };
}
