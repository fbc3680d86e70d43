/**
 * What a ledger line holds: a request entry (no `kind`, or `kind: "request"`), a summary of refused
 * requests (`kind: "refused"`), a correction of an entry's estimated points (`type: "correction"`), or
 * a kind this version does not know (skipped, never fatal, so a newer writer sharing the directory
 * cannot break an older reader). Pure: no I/O.
 */

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
 * Appended (the ledger stays append-only) to the month file of the entry's time, so it always lies in
 * the same month as its entry, after it; applied when the ledger is read, keyed by the entry's id and
 * time; the first correction of an entry wins, and an entry with actual points is never changed.
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

export const CORRECTION = 'correction';

/** Why a request was answered without anything being sent to Poe. */
export type RefusedReason = 'rate_limit' | 'paused' | 'over_budget' | 'invalid_request' | 'gate' | 'aborted' | 'error';
export const REFUSED_REASONS: readonly RefusedReason[] = ['rate_limit', 'paused', 'over_budget', 'invalid_request', 'gate', 'aborted', 'error'];

/** `count` requests from `client` refused for `reason` between `from` and `to` (one record per minute). */
export interface RefusedSummary {
  kind: 'refused';
  /** ISO time of the first refusal (= `from`; files are split by it). */
  time: string;
  from: string;
  to: string;
  count: number;
  reason: RefusedReason;
  client: string;
}

export type LedgerRecord =
  | { kind: 'entry'; entry: LedgerEntry }
  | { kind: 'refused'; refused: RefusedSummary }
  | { kind: 'correction'; correction: LedgerCorrection }
  | { kind: 'other' }
  | { kind: 'bad'; why: string };

const MAX_ERROR_CHARS = 500;
const num = (v: unknown, dflt = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : dflt);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, dflt = ''): string => (typeof v === 'string' ? v : dflt);
export const STATUSES: readonly LedgerStatus[] = ['ok', 'error', 'aborted', 'paused', 'refused', 'rate_limited'];

/** Copies only the known fields, so nothing else (prompt text) can ever reach the file. */
export function sanitize(e: LedgerEntry): LedgerEntry {
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

export function correctionKey(id: string, time: string): string {
  return `${id}\u0000${time}`;
}

function parseCorrection(r: Record<string, unknown>): LedgerCorrection | undefined {
  const points = numOrNull(r.points);
  if (typeof r.id !== 'string' || !r.id || typeof r.time !== 'string' || points === null || points < 0) return undefined;
  return { id: r.id, time: r.time, points, estimate: num(r.estimate), queryId: str(r.queryId), at: str(r.at) };
}

/** The line of a correction (only its known fields). */
export function correctionLine(c: LedgerCorrection): string {
  const clean: LedgerCorrection = {
    id: String(c.id),
    time: String(c.time),
    points: Number(c.points),
    estimate: Number(c.estimate),
    queryId: String(c.queryId),
    at: String(c.at),
  };
  return `${JSON.stringify({ type: CORRECTION, ...clean })}\n`;
}

/** `e` with correction `c` applied (actual points, the estimate it replaced); `e` itself when it has actual points. */
export function applyCorrection(e: LedgerEntry, c: LedgerCorrection | undefined): LedgerEntry {
  if (!c || !e.pointsEstimated) return e;
  return { ...e, points: c.points, pointsEstimated: false, replacedEstimate: e.points ?? c.estimate, ...(c.queryId ? { queryId: c.queryId } : {}) };
}

/** Entries with their corrections applied (see `applyCorrection`). */
export function applyCorrections(entries: LedgerEntry[], corrections: ReadonlyMap<string, LedgerCorrection>): LedgerEntry[] {
  if (corrections.size === 0) return entries;
  return entries.map((e) => applyCorrection(e, corrections.get(correctionKey(e.id, e.time))));
}

/** One line of a ledger file. */
export function parseRecord(line: string): LedgerRecord {
  const trimmed = line.trim();
  if (!trimmed) return { kind: 'other' };
  let raw: unknown;
  try {
    raw = JSON.parse(trimmed);
  } catch {
    return { kind: 'bad', why: 'not JSON' };
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { kind: 'bad', why: 'not a JSON object' };
  const r = raw as Record<string, unknown>;
  if (r.type === CORRECTION) {
    const correction = parseCorrection(r);
    return correction ? { kind: 'correction', correction } : { kind: 'bad', why: 'malformed correction' };
  }
  if (r.kind === undefined || r.kind === 'request') {
    if (typeof r.time !== 'string' || typeof r.model !== 'string') return { kind: 'bad', why: 'no time or model' };
    return { kind: 'entry', entry: normalize(r, false) };
  }
  if (r.kind === 'refused') {
    if (typeof r.from !== 'string' || typeof r.to !== 'string' || !REFUSED_REASONS.includes(r.reason as RefusedReason))
      return { kind: 'bad', why: 'malformed refused summary' };
    return {
      kind: 'refused',
      refused: {
        kind: 'refused',
        time: r.from,
        from: r.from,
        to: r.to,
        count: Math.max(0, Math.floor(num(r.count))),
        reason: r.reason as RefusedReason,
        client: str(r.client),
      },
    };
  }
  return { kind: 'other' };
}

/**
 * Parses JSONL text, skipping blank, torn, foreign and non-entry lines. Corrections go into
 * `corrections` when given (the first one for an entry wins), else are skipped.
 */
export function parseLedgerText(text: string, corrections?: Map<string, LedgerCorrection>): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  for (const line of text.split('\n')) {
    const r = parseRecord(line);
    if (r.kind === 'entry') out.push(r.entry);
    else if (r.kind === 'correction' && corrections) {
      const key = correctionKey(r.correction.id, r.correction.time);
      if (!corrections.has(key)) corrections.set(key, r.correction);
    }
  }
  return out;
}

/** The refusal reason of an entry for a request that never reached Poe. */
export function refusedReason(e: Pick<LedgerEntry, 'status' | 'httpStatus'>): RefusedReason {
  switch (e.status) {
    case 'rate_limited':
      return 'rate_limit';
    case 'paused':
      return 'paused';
    case 'refused':
      return 'over_budget';
    case 'aborted':
      return 'aborted';
    default:
      return e.httpStatus >= 400 && e.httpStatus < 500 ? 'invalid_request' : 'error';
  }
}

/** "refused by the rate limit" etc., for the history view and logs. */
export function refusedReasonText(r: RefusedReason): string {
  switch (r) {
    case 'rate_limit':
      return 'refused by the rate limit';
    case 'paused':
      return 'paused (balance below the cutoff)';
    case 'over_budget':
      return 'refused over the per-message cap';
    case 'invalid_request':
      return 'refused as invalid';
    case 'gate':
      return 'refused at the gate (access key, host, size or format)';
    case 'aborted':
      return 'cancelled by the client before reaching Poe';
    case 'error':
      return 'failed before reaching Poe';
  }
}
