import * as assert from 'node:assert/strict';
import * as sinon from 'sinon';
import { makeConfig } from '../../src/core/store/config';
import { pausedAnswer } from '../../src/core/exchange/guards';
import type { Logger } from '../../src/core/log';
import { FetchJson, parsePointsHistory, PoeUsage, PointsEntry } from '../../src/core/poe/usage';

type Reply = { status: number; body: unknown };
const T0 = 1_750_000_000_000;
const balanceReply = (v: number): Reply => ({ status: 200, body: { current_point_balance: v } });

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, trace: rec('trace'), debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

/** A balance endpoint the test scripts: a value, a failure, or a hang. */
function balanceEndpoint() {
  const state = { mode: 'ok' as 'ok' | 'fail' | 'hang', value: 50_000, calls: 0 };
  const fn: FetchJson = async () => {
    state.calls++;
    if (state.mode === 'hang') return new Promise<Reply>(() => undefined);
    if (state.mode === 'fail') return { status: 503, body: {} };
    return balanceReply(state.value);
  };
  return { state, fn };
}

describe('balance guard (never fails open, never stalls)', () => {
  let clock: sinon.SinonFakeTimers;
  const usages: PoeUsage[] = [];
  const make = (fetchJson: FetchJson, logger?: Logger): PoeUsage => {
    const u = new PoeUsage({ fetchJson, balanceTtlMs: 60_000, balanceTimeoutMs: 3_000, pointsWaitMs: 0, logger });
    usages.push(u);
    return u;
  };
  const config = makeConfig({ pointsCutoff: 100_000 });

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    for (const u of usages.splice(0)) u.dispose();
    clock.restore();
  });

  it('keeps pausing on the last known balance while the balance endpoint fails, and says it could not be refreshed', async () => {
    const b = balanceEndpoint();
    const u = make(b.fn);
    const first = await pausedAnswer(config, u, undefined);
    assert.match(first ?? '', /50,000 points, below the cutoff/);
    assert.doesNotMatch(first ?? '', /could not be refreshed/);
    b.state.mode = 'fail';
    await clock.tickAsync(61_000); // past the TTL: the next decision triggers a refresh, which fails
    await pausedAnswer(config, u, undefined);
    await clock.tickAsync(10);
    const later = await pausedAnswer(config, u, undefined);
    assert.match(later ?? '', /50,000 points, below the cutoff/, 'a failing refresh must not let requests through');
    assert.match(later ?? '', /could not be refreshed/);
    b.state.mode = 'ok';
    b.state.value = 200_000;
    await clock.tickAsync(61_000);
    await pausedAnswer(config, u, undefined); // decides on the old value, refreshes in the background
    await clock.tickAsync(10);
    assert.equal(await pausedAnswer(config, u, undefined), undefined, 'a newer reading lifts the pause');
  });

  it('decides on the last known balance at once while the endpoint hangs, refreshing in the background with a short timeout', async () => {
    const b = balanceEndpoint();
    const u = make(b.fn);
    await pausedAnswer(config, u, undefined);
    b.state.mode = 'hang';
    await clock.tickAsync(61_000);
    const callsBefore = b.state.calls;
    let settled = 0;
    for (let i = 0; i < 4; i++) void pausedAnswer(config, u, undefined).then(() => settled++);
    await clock.tickAsync(0);
    assert.equal(settled, 4, 'no request waits for a hanging balance endpoint');
    assert.equal(b.state.calls, callsBefore + 1, 'one background refresh for all of them');
    await clock.tickAsync(3_000); // the short timeout ends the hanging fetch
    void pausedAnswer(config, u, undefined);
    await clock.tickAsync(0);
    assert.equal(b.state.calls, callsBefore + 2, 'the next decision tries again');
  });

  it('lets one request wait for a first reading; the others go on without one', async () => {
    const b = balanceEndpoint();
    b.state.mode = 'hang';
    const u = make(b.fn);
    const settled: Array<string | undefined> = [];
    void pausedAnswer(config, u, undefined).then((v) => settled.push(`first:${v ?? 'none'}`));
    for (let i = 0; i < 3; i++) void pausedAnswer(config, u, undefined).then((v) => settled.push(v ?? 'none'));
    await clock.tickAsync(0);
    assert.deepEqual(settled, ['none', 'none', 'none']);
    await clock.tickAsync(3_000);
    assert.deepEqual(settled, ['none', 'none', 'none', 'first:none'], 'the first waits no longer than the balance timeout');
    assert.equal(b.state.calls, 1);
  });

  it('fetches the balance even with the cutoff off, so the footer and the status bar have it', async () => {
    const b = balanceEndpoint();
    const u = make(b.fn);
    assert.equal(await pausedAnswer(makeConfig({ pointsCutoff: 0 }), u, undefined), undefined);
    await clock.tickAsync(0);
    assert.equal(u.cachedBalance()?.value, 50_000);
  });
});

describe('points_history entries with implausible costs', () => {
  const entry = (id: string, cost: number): PointsEntry => ({
    creation_time: T0 * 1000,
    bot_name: 'GPT-4.1',
    query_id: id,
    usage_type: 'API',
    cost_points: cost,
  });

  it('leaves out negative, fractional and absurd costs and reports each', () => {
    const rejected: string[] = [];
    const got = parsePointsHistory({ data: [entry('ok', 120), entry('neg', -500), entry('frac', 12.5), entry('huge', 1e12), entry('zero', 0)] }, (e, why) =>
      rejected.push(`${e.query_id}: ${why}`),
    );
    assert.deepEqual(
      got?.map((e) => e.query_id),
      ['ok', 'zero'],
    );
    assert.deepEqual(rejected, ['neg: negative', 'frac: not a whole number', 'huge: above 10000000']);
  });

  it('never books a negative entry and logs it once however often it is read', async () => {
    const clock = sinon.useFakeTimers({ now: T0 });
    const logger = recordingLogger();
    const body = { has_more: false, data: [entry('neg', -500)] };
    const u = new PoeUsage({ fetchJson: async () => ({ status: 200, body }), balanceTtlMs: 60_000, pointsWaitMs: 1_000, pollIntervalMs: 100, logger });
    try {
      const p = u.matchPoints({ botName: 'GPT-4.1', startedAt: T0 - 100, finishedAt: T0 });
      await clock.tickAsync(1_000);
      assert.equal(await p, undefined);
      assert.ok((await u.pointsPage())?.entries.length === 0);
      assert.equal(logger.lines.filter((l) => l.includes('neg')).length, 1);
    } finally {
      u.dispose();
      clock.restore();
    }
  });
});
