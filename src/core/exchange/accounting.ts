/**
 * The bookkeeping of one proxied exchange, whatever its endpoint: its outcome, the points it cost
 * (Poe's Usage API, else the models.yaml estimate) and the ledger entry written when it ends.
 */
import { randomUUID } from 'node:crypto';
import { ProxyError } from '../http/errors';
import type { LedgerEntry } from '../store/ledger';
import { capText, redact } from '../log';
import type { Usage } from './openaiTypes';
import { estimatePoints, type ModelEntry } from '../store/registry';
import type { PoeUsage } from '../poe/usage';

/** Tokens counted per message (or tool definition) on top of its text: the role and separators every chat format adds. */
export const PER_MESSAGE_OVERHEAD = 4;

/** Filled in as the exchange goes and written to the ledger at the end. */
export interface Outcome {
  status: LedgerEntry['status'];
  httpStatus: number;
  usage?: Usage;
  points: number | null;
  pointsEstimated: boolean;
  /** The points_history entry the points came from (so it is never given to another request). */
  queryId?: string;
  retries: number;
  clipped: boolean;
  /** A request went out to Poe (points may have been spent); false = answered by the proxy alone. */
  sentToPoe: boolean;
  error?: string;
}

export function newOutcome(): Outcome {
  return { status: 'ok', httpStatus: 200, points: null, pointsEstimated: false, retries: 0, clipped: false, sentToPoe: false };
}

/**
 * Sets `outcome.points` from Poe's points history (matched by bot and time window) when it lists the
 * request within `waitMs`, else from the estimate over `outcome.usage` (marked estimated: the reconciler
 * books the actual points later); then tells the balance service what was spent. `waitMs` is 0 for an
 * answer no person reads (no footer): nothing waits for the Usage API then.
 */
export async function settlePoints(
  usage: PoeUsage,
  model: ModelEntry,
  startedAt: number,
  outcome: Outcome,
  opts: { waitMs: number; signal?: AbortSignal },
): Promise<void> {
  const entry =
    opts.waitMs > 0 ? await usage.matchPoints({ botName: model.id, startedAt, finishedAt: Date.now(), signal: opts.signal, waitMs: opts.waitMs }) : undefined;
  if (entry) {
    outcome.points = entry.cost_points;
    outcome.pointsEstimated = false;
    outcome.queryId = entry.query_id;
  } else {
    const u = outcome.usage;
    outcome.points = estimatePoints(model, (u?.prompt_tokens ?? 0) + (u?.completion_tokens ?? 0));
    outcome.pointsEstimated = true;
  }
  usage.noteSpent(outcome.points);
  usage.refreshBalanceSoon();
}

/** Any failure as a ProxyError (an unexpected one is a 500 that asks for a bug report), noted in the outcome. */
export function noteFailure(outcome: Outcome, err: unknown): ProxyError {
  const pe =
    err instanceof ProxyError
      ? err
      : new ProxyError(
          500,
          `Internal proxy error: ${(err as Error)?.message ?? String(err)}. This is a bug; please report it with the proxy log.`,
          'api_error',
          'internal_error',
        );
  if (outcome.status === 'ok') outcome.status = pe.status === 429 ? 'rate_limited' : 'error';
  outcome.httpStatus = pe.status;
  outcome.error = pe.message;
  return pe;
}

/** Longest model (and client) name and error text stored in a ledger entry. */
export const MAX_LEDGER_MODEL_CHARS = 200;
export const MAX_LEDGER_ERROR_CHARS = 500;

/** More tokens than any model reads or writes in one request: a usage figure above it is not believed. */
const MAX_PLAUSIBLE_TOKENS = 100_000_000;

/**
 * A token count Poe reported, if it is plausible (a whole, non-negative, finite number below 100M);
 * undefined otherwise, so the proxy estimates instead of booking negative or absurd usage.
 */
export function plausibleTokens(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_PLAUSIBLE_TOKENS ? v : undefined;
}

export interface LedgerFacts {
  startedAt: number;
  requestId: string | string[] | undefined;
  model: string;
  endpoint: LedgerEntry['endpoint'];
  stream: boolean;
  client: string;
  balanceAfter: number | null;
}

/** The client's `x-request-id`, else one of ours: a correction of the entry's points is keyed by it. */
export function requestIdOf(header: string | string[] | undefined): string {
  const given = header?.toString().slice(0, 64);
  return given || `pp-${randomUUID()}`;
}

export function ledgerEntry(f: LedgerFacts, o: Outcome): LedgerEntry {
  return {
    time: new Date(f.startedAt).toISOString(),
    // Client-supplied strings are capped before they are stored (a 6 MB model name is not a 6 MB line).
    id: requestIdOf(f.requestId),
    model: capText(f.model, MAX_LEDGER_MODEL_CHARS),
    endpoint: f.endpoint,
    stream: f.stream,
    status: o.status,
    httpStatus: o.status === 'aborted' ? 499 : o.httpStatus,
    tokensIn: o.usage?.prompt_tokens ?? 0,
    tokensOut: o.usage?.completion_tokens ?? 0,
    points: o.points,
    pointsEstimated: o.pointsEstimated,
    balanceAfter: f.balanceAfter,
    durationMs: Date.now() - f.startedAt,
    clipped: o.clipped,
    retries: o.retries,
    client: capText(f.client, MAX_LEDGER_MODEL_CHARS),
    ...(o.queryId ? { queryId: o.queryId } : {}),
    ...(o.error ? { error: capText(redact(o.error), MAX_LEDGER_ERROR_CHARS) } : {}),
  };
}
