import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import type { Logger } from '../../src/core/log';
import { FetchJson, PoeUsage, PointsEntry } from '../../src/core/poe/usage';

type Reply = { status: number; body: unknown };
type Handler = (path: string, signal?: AbortSignal) => Reply | Promise<Reply>;

function fakeFetch(handler: Handler): { fn: FetchJson; calls: string[]; signals: Array<AbortSignal | undefined> } {
  const calls: string[] = [];
  const signals: Array<AbortSignal | undefined> = [];
  const fn: FetchJson = (path, signal) => {
    calls.push(path);
    signals.push(signal);
    return Promise.resolve().then(() => handler(path, signal));
  };
  return { fn, calls, signals };
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, trace: rec('trace'), debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

const T0 = 1_750_000_000_000;
const balanceReply = (v: number): Reply => ({ status: 200, body: { current_point_balance: v } });

function pe(queryId: string, atMs: number, bot = 'GPT-4.1', cost = 100, usageType = 'API'): PointsEntry {
  return { creation_time: atMs * 1000, bot_name: bot, query_id: queryId, usage_type: usageType, cost_points: cost };
}

/** A points_history endpoint whose entries the test adds over time (newest first, like Poe). */
function history(): { entries: PointsEntry[]; handler: Handler; status: number } {
  const h = {
    entries: [] as PointsEntry[],
    status: 200,
    handler: (path: string): Reply => {
      if (!path.startsWith('/usage/points_history')) return balanceReply(1000);
      if (h.status !== 200) return { status: h.status, body: { error: { message: 'nope' } } };
      const sorted = [...h.entries].sort((a, b) => b.creation_time - a.creation_time);
      return { status: 200, body: { has_more: false, length: sorted.length, data: sorted } };
    },
  };
  return h;
}

describe('PoeUsage', () => {
  let clock: sinon.SinonFakeTimers;
  const usages: PoeUsage[] = [];
  const make = (opts: Partial<ConstructorParameters<typeof PoeUsage>[0]> & { fetchJson: FetchJson }): PoeUsage => {
    const u = new PoeUsage({ balanceTtlMs: 60_000, pointsWaitMs: 2_000, ...opts });
    usages.push(u);
    return u;
  };

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: T0 });
  });

  afterEach(() => {
    for (const u of usages.splice(0)) u.dispose();
    clock.restore();
  });

  describe('balance', () => {
    it('serves the cached balance within the TTL and fetches again after it', async () => {
      const f = fakeFetch(() => balanceReply(1500));
      const u = make({ fetchJson: f.fn });
      assert.equal(u.cachedBalance(), undefined);
      assert.equal(await u.getBalance(), 1500);
      assert.deepEqual(f.calls, ['/usage/current_balance']);
      assert.deepEqual(u.cachedBalance(), { value: 1500, fetchedAt: T0 });
      await clock.tickAsync(59_999);
      assert.equal(await u.getBalance(), 1500);
      assert.equal(f.calls.length, 1);
      await clock.tickAsync(1);
      assert.equal(await u.getBalance(), 1500);
      assert.equal(f.calls.length, 2);
      assert.equal(await u.getBalance({ maxAgeMs: 0 }), 1500);
      assert.equal(f.calls.length, 3);
    });

    it('shares one in-flight fetch between concurrent callers', async () => {
      let value = 1200;
      const f = fakeFetch(() => new Promise<Reply>((r) => setTimeout(() => r(balanceReply(value)), 100)));
      const u = make({ fetchJson: f.fn });
      const all = Promise.all([u.getBalance(), u.getBalance(), u.getBalance({ maxAgeMs: 0 }), u.getBalance(), u.getBalance()]);
      await clock.tickAsync(100);
      assert.deepEqual(await all, [1200, 1200, 1200, 1200, 1200]);
      assert.equal(f.calls.length, 1);
      value = 1100;
      const again = Promise.all([u.getBalance({ maxAgeMs: 0 }), u.getBalance({ maxAgeMs: 0 })]);
      await clock.tickAsync(100);
      assert.deepEqual(await again, [1100, 1100]);
      assert.equal(f.calls.length, 2);
    });

    it('resolves undefined and logs on every kind of failure, never rejects', async () => {
      const replies: Array<() => Reply | Promise<Reply>> = [
        () => {
          throw new Error('sync boom');
        },
        () => Promise.reject(new Error('network down')),
        () => ({ status: 500, body: {} }),
        () => ({ status: 200, body: { current_point_balance: 'lots' } }),
        () => ({ status: 200, body: null }),
      ];
      let i = 0;
      const logger = recordingLogger();
      const throwing: FetchJson = (path, signal) => {
        void path;
        void signal;
        const r = replies[i++];
        return r() as Promise<Reply>; // the first one throws synchronously
      };
      const u = make({ fetchJson: throwing, logger });
      for (let k = 0; k < replies.length; k++) assert.equal(await u.getBalance(), undefined, `reply ${k}`);
      assert.equal(i, replies.length);
      assert.equal(u.cachedBalance(), undefined);
      const warns = logger.lines.filter((l) => l.startsWith('warn'));
      assert.equal(warns.length, 5);
      assert.ok(warns[0].includes('sync boom'));
      assert.ok(warns[1].includes('network down'));
      assert.ok(warns[2].includes('HTTP 500'));
    });

    it('says why the last balance fetch failed (key rejected, unreachable, other) until one succeeds', async () => {
      let reply: () => Reply | Promise<Reply> = () => ({ status: 401, body: { error: { message: 'Invalid API key' } } });
      const u = make({ fetchJson: () => Promise.resolve().then(() => reply()) });
      const seen: Array<string | undefined> = [];
      u.onDidChangeBalanceProblem((p) => seen.push(p?.kind));
      assert.equal(u.balanceProblem(), undefined);
      assert.equal(await u.getBalance({ maxAgeMs: 0 }), undefined);
      assert.equal(u.balanceProblem()?.kind, 'key-rejected');
      assert.match(u.balanceProblem()!.message, /Poe rejected the API key/);
      assert.equal(u.balanceProblem()!.at, T0);
      reply = () => Promise.reject(new Error('cannot reach Poe at http://127.0.0.1:9: ECONNREFUSED'));
      await clock.tickAsync(1_000);
      await u.getBalance({ maxAgeMs: 0 });
      assert.deepEqual({ kind: u.balanceProblem()?.kind, at: u.balanceProblem()?.at }, { kind: 'unreachable', at: T0 + 1_000 });
      assert.match(u.balanceProblem()!.message, /^Could not get an answer from Poe: cannot reach Poe at .*ECONNREFUSED/);
      await u.getBalance({ maxAgeMs: 0 }); // the same problem again: no second event
      reply = () => ({ status: 503, body: {} });
      await u.getBalance({ maxAgeMs: 0 });
      assert.equal(u.balanceProblem()?.kind, 'error');
      assert.match(u.balanceProblem()!.message, /HTTP 503/);
      reply = () => balanceReply(42);
      assert.equal(await u.getBalance({ maxAgeMs: 0 }), 42);
      assert.equal(u.balanceProblem(), undefined);
      assert.deepEqual(seen, ['key-rejected', 'unreachable', 'error', undefined]);
    });

    it('gives up on a fetch that hangs and aborts its signal', async () => {
      const f = fakeFetch(() => new Promise<Reply>(() => undefined));
      const u = make({ fetchJson: f.fn, balanceTimeoutMs: 5_000 });
      const p = u.getBalance();
      await clock.tickAsync(4_999);
      assert.equal(f.signals[0]?.aborted, false);
      await clock.tickAsync(1);
      assert.equal(await p, undefined);
      assert.equal(f.signals[0]?.aborted, true);
    });

    it('noteSpent lowers the cached balance and notifies without a round trip', async () => {
      const f = fakeFetch(() => balanceReply(1000));
      const u = make({ fetchJson: f.fn });
      const seen: number[] = [];
      u.onDidChangeBalance((v) => seen.push(v));
      u.noteSpent(50); // nothing cached yet: no-op
      assert.deepEqual(seen, []);
      await u.getBalance();
      u.noteSpent(30);
      u.noteSpent(0);
      u.noteSpent(-5);
      u.noteSpent(Number.NaN);
      assert.deepEqual(u.cachedBalance(), { value: 970, fetchedAt: T0 });
      assert.equal(await u.getBalance(), 970);
      assert.equal(f.calls.length, 1);
      u.noteSpent(5000);
      assert.equal(u.cachedBalance()?.value, 0);
      assert.deepEqual(seen, [1000, 970, 0]);
    });

    it('notifies onDidChangeBalance only when a fetch changes the value; dispose of the listener works', async () => {
      let value = 1000;
      const f = fakeFetch(() => balanceReply(value));
      const u = make({ fetchJson: f.fn });
      const seen: number[] = [];
      const sub = u.onDidChangeBalance((v) => seen.push(v));
      await u.getBalance();
      await u.getBalance({ maxAgeMs: 0 });
      value = 900;
      await u.getBalance({ maxAgeMs: 0 });
      sub.dispose();
      value = 800;
      await u.getBalance({ maxAgeMs: 0 });
      assert.deepEqual(seen, [1000, 900]);
    });

    it('refreshBalanceSoon debounces a burst into one background fetch', async () => {
      let value = 1000;
      const f = fakeFetch(() => balanceReply(value));
      const u = make({ fetchJson: f.fn, refreshDelayMs: 1_000 });
      await u.getBalance();
      value = 940;
      const seen: number[] = [];
      u.onDidChangeBalance((v) => seen.push(v));
      u.refreshBalanceSoon();
      await clock.tickAsync(300);
      u.refreshBalanceSoon();
      u.refreshBalanceSoon();
      await clock.tickAsync(699);
      assert.equal(f.calls.length, 1);
      await clock.tickAsync(1);
      assert.equal(f.calls.length, 2);
      assert.equal(u.cachedBalance()?.value, 940);
      assert.deepEqual(seen, [940]);
      await clock.tickAsync(10_000);
      assert.equal(f.calls.length, 2);
    });

    it('refreshBalanceSoon does not settle for a fetch that started before it was asked', async () => {
      let value = 1000;
      const f = fakeFetch(() => {
        const v = value; // the server's value when the request arrives
        return new Promise<Reply>((r) => setTimeout(() => r(balanceReply(v)), 3_000));
      });
      const u = make({ fetchJson: f.fn, refreshDelayMs: 1_000, balanceTimeoutMs: 10_000 });
      const first = u.getBalance();
      await clock.tickAsync(10);
      value = 900; // a request spent 100 points after the fetch was sent
      u.refreshBalanceSoon();
      await clock.tickAsync(3_000);
      assert.equal(await first, 1000);
      assert.equal(f.calls.length, 2);
      await clock.tickAsync(3_000);
      assert.equal(u.cachedBalance()?.value, 900);
    });
  });

  describe('matchPoints', () => {
    it('polls until a lagging entry shows up, then stops polling', async () => {
      const h = history();
      h.entries.push(pe('older-same-bot', T0 - 10_000), pe('other-bot', T0, 'Claude-Sonnet-4.5'));
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn, pollIntervalMs: 250 });
      const p = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 1_000, finishedAt: T0 });
      await clock.tickAsync(600);
      h.entries.push(pe('mine', T0 + 400, 'GPT-4.1', 321));
      await clock.tickAsync(200);
      const got = await p;
      assert.equal(got?.query_id, 'mine');
      assert.equal(got?.cost_points, 321);
      assert.deepEqual(f.calls, Array(4).fill('/usage/points_history?limit=20')); // t = 0, 250, 500, 750
      await clock.tickAsync(5_000);
      assert.equal(f.calls.length, 4);
      assert.equal(clock.countTimers(), 0);
    });

    it('gives two concurrent same-bot requests different entries, each the closest to its finish', async () => {
      const h = history();
      h.entries.push(pe('for-a', T0 - 950), pe('for-b', T0 + 20));
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn });
      const a = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 3_000, finishedAt: T0 - 1_000 });
      const b = u.matchPoints({ botName: 'gpt-4.1', startedAt: T0 - 2_500, finishedAt: T0 });
      await clock.tickAsync(10);
      assert.equal((await a)?.query_id, 'for-a');
      assert.equal((await b)?.query_id, 'for-b');
      assert.equal(f.calls.length, 1); // one shared poll served both
    });

    it('never hands the same entry to two requests, even when entries arrive one at a time', async () => {
      const h = history();
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn, pointsWaitMs: 5_000 });
      const a = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 1_000, finishedAt: T0 });
      const b = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 900, finishedAt: T0 + 100 });
      await clock.tickAsync(300);
      h.entries.push(pe('first', T0 + 50));
      await clock.tickAsync(500);
      h.entries.push(pe('second', T0 + 60));
      await clock.tickAsync(500);
      const [ea, eb] = await Promise.all([a, b]);
      assert.ok(ea && eb, 'both matched');
      assert.equal(ea.query_id, 'first'); // oldest waiter first
      assert.equal(eb.query_id, 'second');
    });

    it('does not reuse an entry an earlier call claimed', async () => {
      const h = history();
      h.entries.push(pe('only', T0));
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn });
      const first = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 500, finishedAt: T0 });
      await clock.tickAsync(1);
      assert.equal((await first)?.query_id, 'only');
      const second = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 500, finishedAt: T0 });
      await clock.tickAsync(2_000);
      assert.equal(await second, undefined);
      assert.ok(f.calls.length > 2, 'kept polling for the second request');
    });

    it('coalesces polling for many concurrent waiters', async () => {
      const h = history();
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn, pollIntervalMs: 250 });
      const bots = Array.from({ length: 10 }, (_, i) => `Bot-${i}`);
      const waits = bots.map((bot) => u.matchPoints({ botName: bot, startedAt: T0 - 100, finishedAt: T0 }));
      await clock.tickAsync(400);
      bots.forEach((bot, i) => h.entries.push(pe(`q-${i}`, T0 + i, bot)));
      await clock.tickAsync(200);
      const got = await Promise.all(waits);
      assert.deepEqual(
        got.map((e) => e?.query_id),
        bots.map((_, i) => `q-${i}`),
      );
      assert.equal(f.calls.length, 3); // t = 0, 250, 500 — not one poll per waiter
    });

    it("reads further pages (has_more, starting_after) when a burst pushes the waiters' entries off the first one", async () => {
      const entries = [
        ...Array.from({ length: 30 }, (_, i) => pe(`mine-${i}`, T0 - 500 + i)),
        ...Array.from({ length: 200 }, (_, j) => pe(`other-${j}`, T0 + 100 + j, 'Other-Bot')),
      ].sort((a, b) => b.creation_time - a.creation_time);
      const paged: Handler = (path) => {
        const q = new URL(path, 'http://x').searchParams;
        const limit = Number(q.get('limit'));
        const after = q.get('starting_after');
        const start = after ? entries.findIndex((e) => e.query_id === after) + 1 : 0;
        const page = entries.slice(start, start + limit);
        return { status: 200, body: { has_more: start + limit < entries.length, length: page.length, data: page } };
      };
      const f = fakeFetch(paged);
      const u = make({ fetchJson: f.fn, pollIntervalMs: 250 });
      const waits = Array.from({ length: 30 }, (_, i) => u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 1_000 + i, finishedAt: T0 - 500 + i }));
      // The first poll starts with the first waiter (pages of 20, five at most); the next one, 250 ms on, sees all 30 (pages of 60).
      await clock.tickAsync(300);
      const got = await Promise.all(waits);
      assert.deepEqual(got.map((e) => e?.query_id).sort(), Array.from({ length: 30 }, (_, i) => `mine-${i}`).sort());
      assert.ok(f.calls.length <= 10, `at most five pages a poll: ${f.calls.length}`);
      assert.ok(
        f.calls.some((c) => c.includes('limit=60&starting_after=')),
        f.calls.join('\n'),
      );
    });

    it('ignores other bots, entries outside the window (with 2 s slack) and non-API usage', async () => {
      const h = history();
      h.entries.push(
        pe('too-early', T0 - 5_000 - 2_001),
        pe('too-late', T0 + 2_001),
        pe('web-chat', T0, 'GPT-4.1', 100, 'Chat'),
        pe('wrong-bot', T0, 'GPT-4o'),
        pe('early-edge', T0 - 5_000 - 2_000),
      );
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn });
      const p = u.matchPoints({ botName: 'gpt-4.1', startedAt: T0 - 5_000, finishedAt: T0 });
      await clock.tickAsync(1);
      assert.equal((await p)?.query_id, 'early-edge');
      const q = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 5_000, finishedAt: T0 });
      await clock.tickAsync(2_000);
      assert.equal(await q, undefined);
    });

    it('resolves undefined after pointsWaitMs and leaves no timers behind', async () => {
      const h = history();
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn, pointsWaitMs: 1_500, pollIntervalMs: 250 });
      let result: PointsEntry | undefined | 'pending' = 'pending';
      void u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0 }).then((r) => (result = r));
      await clock.tickAsync(1_499);
      assert.equal(result, 'pending');
      await clock.tickAsync(1);
      assert.equal(result, undefined);
      const polls = f.calls.length;
      assert.ok(polls >= 5 && polls <= 7, `polled ${polls} times`);
      await clock.tickAsync(5_000);
      assert.equal(f.calls.length, polls);
      assert.equal(clock.countTimers(), 0);
    });

    it('keeps polling through server errors', async () => {
      const h = history();
      h.status = 503;
      const logger = recordingLogger();
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn, logger });
      const p = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0 });
      await clock.tickAsync(600);
      h.status = 200;
      h.entries.push(pe('late', T0));
      await clock.tickAsync(300);
      assert.equal((await p)?.query_id, 'late');
      assert.equal(logger.lines.filter((l) => l.startsWith('warn')).length, 1); // one warning per streak
    });

    it('stops at a 401, resolves undefined at once and skips matching for a while', async () => {
      const h = history();
      h.status = 401;
      h.entries.push(pe('x', T0));
      const logger = recordingLogger();
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn, logger, pointsWaitMs: 10_000, authRetryMs: 60_000 });
      const a = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0 });
      const b = u.matchPoints({ botName: 'Claude', startedAt: T0 - 100, finishedAt: T0 });
      await clock.tickAsync(5);
      assert.equal(await a, undefined);
      assert.equal(await b, undefined);
      assert.equal(f.calls.length, 1);
      assert.equal(await u.matchPoints({ botName: 'GPT-4.1', startedAt: T0, finishedAt: T0 }), undefined);
      await clock.tickAsync(5_000);
      assert.equal(f.calls.length, 1);
      assert.equal(clock.countTimers(), 0);
      assert.equal(logger.lines.filter((l) => l.includes('401')).length, 1);
      // After the back-off, with a fixed key, matching works again.
      await clock.tickAsync(60_000);
      h.status = 200;
      const c = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0 });
      await clock.tickAsync(5);
      assert.equal((await c)?.query_id, 'x');
    });

    it('resolves undefined when the caller aborts; other waiters are unaffected', async () => {
      const h = history();
      const f = fakeFetch(h.handler);
      const u = make({ fetchJson: f.fn });
      const ac = new AbortController();
      const a = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0, signal: ac.signal });
      const b = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0 });
      await clock.tickAsync(100);
      ac.abort();
      assert.equal(await a, undefined);
      h.entries.push(pe('for-b', T0));
      await clock.tickAsync(300);
      assert.equal((await b)?.query_id, 'for-b');
      const pre = new AbortController();
      pre.abort();
      const callsBefore = f.calls.length;
      assert.equal(await u.matchPoints({ botName: 'GPT-4.1', startedAt: T0, finishedAt: T0, signal: pre.signal }), undefined);
      assert.equal(f.calls.length, callsBefore);
    });

    it('pointsWaitMs 0 does not poll at all', async () => {
      const f = fakeFetch(history().handler);
      const u = make({ fetchJson: f.fn, pointsWaitMs: 0 });
      assert.equal(await u.matchPoints({ botName: 'GPT-4.1', startedAt: T0, finishedAt: T0 }), undefined);
      assert.equal(f.calls.length, 0);
    });

    it('asks for a longer page when many requests wait at once', async () => {
      const f = fakeFetch(history().handler);
      const u = make({ fetchJson: f.fn });
      for (let i = 0; i < 30; i++) void u.matchPoints({ botName: `B${i}`, startedAt: T0, finishedAt: T0 });
      await clock.tickAsync(260);
      assert.deepEqual(f.calls, ['/usage/points_history?limit=20', '/usage/points_history?limit=60']);
    });
  });

  describe('dispose', () => {
    it('resolves waiters, aborts in-flight fetches, clears timers, and turns calls into no-ops', async () => {
      const f = fakeFetch(() => new Promise<Reply>(() => undefined));
      const u = make({ fetchJson: f.fn, pointsWaitMs: 10_000 });
      const m = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0, finishedAt: T0 });
      const b = u.getBalance();
      u.refreshBalanceSoon();
      await clock.tickAsync(1);
      u.dispose();
      assert.equal(await m, undefined);
      assert.equal(await b, undefined);
      assert.ok(f.signals.length === 2 && f.signals.every((s) => s?.aborted === true));
      assert.equal(clock.countTimers(), 0);
      assert.equal(await u.getBalance(), undefined);
      assert.equal(await u.matchPoints({ botName: 'GPT-4.1', startedAt: T0, finishedAt: T0 }), undefined);
      u.refreshBalanceSoon();
      assert.equal(clock.countTimers(), 0);
      assert.equal(f.calls.length, 2);
    });
  });
});
