/**
 * Local rate limiting in front of Poe: a token bucket per client plus one global cap on requests in flight.
 *
 * - Bucket: capacity `burst` (at least 1), refilled at `requestsPerMinute / 60` tokens per second;
 *   `requestsPerMinute: 0` turns the per-client limit off. A refused request takes no token.
 * - Concurrency: at most `maxConcurrent` granted requests hold a slot until `release()` (idempotent);
 *   `maxConcurrent: 0` turns the cap off. A request refused for concurrency takes no token either.
 * - Memory: buckets are kept in least-recently-used order; a bucket untouched for the time a bucket needs to
 *   refill from empty is indistinguishable from a new one and is pruned on the next `take`. A hard cap
 *   (`maxClients`) evicts the least recently used bucket beyond it (that client just gets a fresh burst).
 */
import type { RateLimitConfig } from './store/config';
import { ProxyError } from './http/errors';

export type RateLimitGranted = { ok: true; release(): void };
export type RateLimitRefused = { ok: false; retryAfterSeconds: number; reason: 'rate' | 'concurrency' };
export type RateLimitResult = RateLimitGranted | RateLimitRefused;

interface Bucket {
  tokens: number;
  /** `now()` of the last refill. */
  last: number;
}

/** Hard cap on tracked clients. */
export const DEFAULT_MAX_CLIENTS = 10_000;

/** Retry-After for a concurrency refusal: slots free up as soon as any request ends, so ask for a short wait. */
const CONCURRENCY_RETRY_SECONDS = 1;

export class RateLimiter {
  private cfg: RateLimitConfig;
  private readonly buckets = new Map<string, Bucket>();
  private active = 0;

  constructor(
    cfg: RateLimitConfig,
    private readonly now: () => number = () => performance.now(),
    private readonly maxClients: number = DEFAULT_MAX_CLIENTS,
  ) {
    this.cfg = { ...cfg };
  }

  /** Requests holding a concurrency slot. */
  get inFlight(): number {
    return this.active;
  }

  /** Clients with a bucket in memory. */
  get trackedClients(): number {
    return this.buckets.size;
  }

  /** Applies new settings live. Held slots stay held; buckets keep their tokens (clamped to the new burst). */
  update(cfg: RateLimitConfig): void {
    this.cfg = { ...cfg };
    if (this.ratePerMs() === 0) this.buckets.clear();
  }

  take(clientKey: string): RateLimitResult {
    const t = this.now();
    const rate = this.ratePerMs();
    let bucket: Bucket | undefined;
    if (rate > 0) {
      this.prune(t, rate);
      const cap = this.capacity();
      bucket = this.buckets.get(clientKey);
      if (bucket) {
        bucket.tokens = Math.min(cap, bucket.tokens + Math.max(0, t - bucket.last) * rate);
        bucket.last = t;
        this.buckets.delete(clientKey); // re-insert below: keeps LRU order
      } else {
        bucket = { tokens: cap, last: t };
      }
      this.buckets.set(clientKey, bucket);
      if (this.buckets.size > this.maxClients) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      if (bucket.tokens < 1) {
        const waitMs = (1 - bucket.tokens) / rate;
        return { ok: false, reason: 'rate', retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000 - 1e-9)) };
      }
    }
    const max = this.maxConcurrent();
    if (max > 0 && this.active >= max) {
      return { ok: false, reason: 'concurrency', retryAfterSeconds: CONCURRENCY_RETRY_SECONDS };
    }
    if (bucket) bucket.tokens -= 1;
    this.active++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.active = Math.max(0, this.active - 1);
      },
    };
  }

  private ratePerMs(): number {
    const rpm = this.cfg.requestsPerMinute;
    return Number.isFinite(rpm) && rpm > 0 ? rpm / 60_000 : 0;
  }

  private capacity(): number {
    const b = this.cfg.burst;
    return Number.isFinite(b) && b >= 1 ? Math.floor(b) : 1;
  }

  private maxConcurrent(): number {
    const m = this.cfg.maxConcurrent;
    return Number.isFinite(m) && m > 0 ? Math.floor(m) : 0;
  }

  /** Drops buckets that would be full again by now, oldest first; stops at the first that would not. */
  private prune(t: number, rate: number): void {
    const idleMs = this.capacity() / rate;
    for (const [key, b] of this.buckets) {
      if (t - b.last < idleMs) break;
      this.buckets.delete(key);
    }
  }
}

/** A 429 in OpenAI's shape for a refused `take`, with `Retry-After` and a hint on what to change. */
export function rateLimitError(result: RateLimitRefused): ProxyError {
  const secs = Math.max(1, Math.ceil(result.retryAfterSeconds));
  const wait = `Retry in ${secs} second${secs === 1 ? '' : 's'}`;
  const message =
    result.reason === 'rate'
      ? `Poe Proxy's local rate limit for this client was reached. ${wait}, or raise the rate limit (requests per minute / burst) in the Poe Proxy settings.`
      : `Poe Proxy already has the maximum number of requests in flight. ${wait}, or raise the max concurrent requests in the Poe Proxy settings.`;
  return new ProxyError(429, message, 'rate_limit_error', result.reason === 'rate' ? 'rate_limit_exceeded' : 'too_many_concurrent_requests', null, {
    'Retry-After': String(secs),
  });
}
