import * as assert from 'node:assert/strict';
import { RateLimiter, RateLimitResult, rateLimitError } from '../../src/core/rateLimit';

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function refused(r: RateLimitResult): { retryAfterSeconds: number; reason: string } {
  assert.equal(r.ok, false, 'expected a refusal');
  if (r.ok) throw new Error('unreachable');
  return { retryAfterSeconds: r.retryAfterSeconds, reason: r.reason };
}

function granted(r: RateLimitResult): () => void {
  assert.equal(r.ok, true, `expected a grant, got ${JSON.stringify(r)}`);
  if (!r.ok) throw new Error('unreachable');
  return r.release;
}

describe('RateLimiter', () => {
  describe('token bucket', () => {
    it('allows a burst, then refuses with the time until the next token', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 3, maxConcurrent: 0 }, c.now);
      for (let i = 0; i < 3; i++) granted(rl.take('a'));
      assert.deepEqual(refused(rl.take('a')), { reason: 'rate', retryAfterSeconds: 1 });
      // Another client has its own bucket.
      granted(rl.take('b'));
    });

    it('refills at requestsPerMinute/60 per second and reports retryAfter in whole seconds', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 6, burst: 2, maxConcurrent: 0 }, c.now); // one token per 10 s
      granted(rl.take('a'));
      granted(rl.take('a'));
      assert.deepEqual(refused(rl.take('a')), { reason: 'rate', retryAfterSeconds: 10 });
      c.advance(4_000);
      assert.equal(refused(rl.take('a')).retryAfterSeconds, 6);
      c.advance(5_500);
      assert.equal(refused(rl.take('a')).retryAfterSeconds, 1); // 0.5 s left rounds up
      c.advance(500);
      granted(rl.take('a'));
      assert.equal(refused(rl.take('a')).retryAfterSeconds, 10);
    });

    it('never stores more than burst tokens, however long the client was idle', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 2, maxConcurrent: 0 }, c.now);
      granted(rl.take('a'));
      c.advance(3_600_000);
      granted(rl.take('a'));
      granted(rl.take('a'));
      refused(rl.take('a'));
    });

    it('a refused request does not consume a token', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 1, maxConcurrent: 0 }, c.now);
      granted(rl.take('a'));
      for (let i = 0; i < 5; i++) refused(rl.take('a'));
      c.advance(1_000);
      granted(rl.take('a'));
    });

    it('requestsPerMinute 0 is unlimited and tracks no clients', () => {
      const rl = new RateLimiter({ requestsPerMinute: 0, burst: 1, maxConcurrent: 0 }, clock().now);
      for (let i = 0; i < 1_000; i++) granted(rl.take(`c${i % 3}`));
      assert.equal(rl.trackedClients, 0);
    });

    it('treats burst below 1 as 1', () => {
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 0, maxConcurrent: 0 }, clock().now);
      granted(rl.take('a'));
      assert.equal(refused(rl.take('a')).reason, 'rate');
    });
  });

  describe('concurrency cap', () => {
    it('caps requests in flight across clients; release frees a slot and is idempotent', () => {
      const rl = new RateLimiter({ requestsPerMinute: 0, burst: 10, maxConcurrent: 2 }, clock().now);
      const r1 = granted(rl.take('a'));
      const r2 = granted(rl.take('b'));
      assert.deepEqual(refused(rl.take('c')), { reason: 'concurrency', retryAfterSeconds: 1 });
      assert.equal(rl.inFlight, 2);
      r1();
      r1();
      r1();
      assert.equal(rl.inFlight, 1);
      const r3 = granted(rl.take('c'));
      refused(rl.take('d')); // the repeated releases did not free extra slots
      r2();
      r3();
      assert.equal(rl.inFlight, 0);
    });

    it('a request refused for concurrency keeps its token', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 1, burst: 1, maxConcurrent: 1 }, c.now);
      const ra = granted(rl.take('a'));
      assert.equal(refused(rl.take('b')).reason, 'concurrency');
      ra();
      granted(rl.take('b')); // b's single token is still there
      assert.deepEqual(refused(rl.take('b')), { reason: 'rate', retryAfterSeconds: 60 });
    });

    it('maxConcurrent 0 is unlimited', () => {
      const rl = new RateLimiter({ requestsPerMinute: 0, burst: 1, maxConcurrent: 0 }, clock().now);
      for (let i = 0; i < 500; i++) granted(rl.take('a'));
      assert.equal(rl.inFlight, 500);
    });
  });

  describe('memory', () => {
    it('prunes buckets idle long enough to be full again', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 2, maxConcurrent: 0 }, c.now); // full after 2 s idle
      for (let i = 0; i < 1_000; i++) granted(rl.take(`client-${i}`));
      assert.equal(rl.trackedClients, 1_000);
      c.advance(1_999);
      granted(rl.take('late'));
      assert.equal(rl.trackedClients, 1_001);
      c.advance(1);
      granted(rl.take('x'));
      assert.equal(rl.trackedClients, 2); // 'late' (1 ms old) and 'x'
    });

    it('a pruned client starts again with a full burst (same as if it was kept)', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 2, maxConcurrent: 0 }, c.now);
      granted(rl.take('a'));
      granted(rl.take('a'));
      c.advance(2_000);
      granted(rl.take('other')); // prunes 'a'
      assert.equal(rl.trackedClients, 1);
      granted(rl.take('a'));
      granted(rl.take('a'));
      refused(rl.take('a'));
    });

    it('never tracks more than maxClients', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 1, burst: 5, maxConcurrent: 0 }, c.now, 100);
      for (let i = 0; i < 5_000; i++) {
        granted(rl.take(`client-${i}`));
        c.advance(1);
      }
      assert.equal(rl.trackedClients, 100);
    });
  });

  describe('update', () => {
    it('applies a lower burst, a new rate and a new concurrency cap live', () => {
      const c = clock();
      const rl = new RateLimiter({ requestsPerMinute: 60, burst: 10, maxConcurrent: 0 }, c.now);
      const held = [granted(rl.take('a'))]; // 9 left
      rl.update({ requestsPerMinute: 60, burst: 2, maxConcurrent: 0 });
      held.push(granted(rl.take('a')));
      held.push(granted(rl.take('a')));
      refused(rl.take('a'));
      rl.update({ requestsPerMinute: 0, burst: 2, maxConcurrent: 1 });
      assert.equal(rl.trackedClients, 0);
      // Slots taken while the cap was off still count against the new cap.
      assert.equal(refused(rl.take('a')).reason, 'concurrency');
      held.forEach((r) => r());
      const rel = granted(rl.take('a'));
      assert.equal(refused(rl.take('a')).reason, 'concurrency');
      rel();
      rl.update({ requestsPerMinute: 30, burst: 1, maxConcurrent: 0 });
      granted(rl.take('a'));
      assert.equal(refused(rl.take('a')).retryAfterSeconds, 2);
    });
  });

  describe('rateLimitError', () => {
    it('is a 429 in OpenAI shape with Retry-After and a hint', () => {
      const err = rateLimitError({ ok: false, reason: 'rate', retryAfterSeconds: 7 });
      assert.equal(err.status, 429);
      assert.deepEqual(err.headers, { 'Retry-After': '7' });
      const body = err.toBody();
      assert.equal(body.error.type, 'rate_limit_error');
      assert.equal(body.error.code, 'rate_limit_exceeded');
      assert.match(body.error.message, /Retry in 7 seconds/);
      assert.match(body.error.message, /requests per minute/);
    });

    it('names the concurrency cap for a concurrency refusal', () => {
      const err = rateLimitError({ ok: false, reason: 'concurrency', retryAfterSeconds: 1 });
      assert.equal(err.headers['Retry-After'], '1');
      assert.equal(err.code, 'too_many_concurrent_requests');
      assert.match(err.message, /Retry in 1 second,/);
      assert.match(err.message, /max concurrent/);
    });
  });
});
