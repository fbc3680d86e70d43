import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sinon from 'sinon';
import { Ledger, type LedgerEntry } from '../../src/core/store/ledger';
import { PointsReconciler } from '../../src/core/poe/reconcile';
import { PoeUsage, type FetchJson, type PointsEntry } from '../../src/core/poe/usage';
import { ledgerEntry } from '../support/ledgerFixtures';
import { seededRandom } from '../support/random';

const T0 = 1_750_000_000_000;

/**
 * Poe's points_history as the reconciler sees it: each entry becomes visible only after its own lag, so
 * entries arrive out of order; pages of `limit` newest first, `starting_after` a query id.
 */
function laggingHistory() {
  const entries: Array<{ entry: PointsEntry; visibleAt: number }> = [];
  let calls = 0;
  const fetchJson: FetchJson = async (p) => {
    calls++;
    const url = new URL(p, 'http://poe');
    if (url.pathname !== '/usage/points_history') return { status: 200, body: { current_point_balance: 1_000_000 } };
    const limit = Number(url.searchParams.get('limit') ?? 20);
    const visible = entries
      .filter((e) => e.visibleAt <= Date.now())
      .map((e) => e.entry)
      .sort((a, b) => b.creation_time - a.creation_time);
    const after = url.searchParams.get('starting_after');
    const from = after ? visible.findIndex((e) => e.query_id === after) + 1 : 0;
    const list = visible.slice(from);
    return { status: 200, body: { has_more: list.length > limit, length: Math.min(limit, list.length), data: list.slice(0, limit) } };
  };
  return { entries, fetchJson, calls: () => calls };
}

/** What the proxy does for one request whose answer showed no footer: book the estimate, reconcile later. */
interface Running {
  ledger: Ledger;
  usage: PoeUsage;
  reconciler: PointsReconciler;
}

function start(dir: string, fetchJson: FetchJson): Running {
  const ledger = new Ledger({ dir, retentionMonths: 0 });
  const usage = new PoeUsage({ fetchJson, balanceTtlMs: 60_000, pointsWaitMs: 0 });
  const reconciler = new PointsReconciler({
    usage,
    correct: (c) => ledger.appendCorrection(c),
    maxAgeMs: 6 * 3_600_000,
    minDelayMs: 2_000,
    maxDelayMs: 60_000,
  });
  return { ledger, usage, reconciler };
}

function stop(r: Running): void {
  r.reconciler.dispose();
  r.usage.dispose();
}

describe('PointsReconciler against a points_history that lags 0–60 s and arrives out of order', () => {
  let clock: sinon.SinonFakeTimers;
  let dir: string;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    dir = mkdtempSync(path.join(os.tmpdir(), 'poe-reconcile-'));
  });
  afterEach(() => {
    clock.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('books ≥ 99% of estimates as actual points, never uses an entry twice, and loses nothing across a restart', async () => {
    const random = seededRandom(11);
    const poe = laggingHistory();
    const bots = ['GPT-4.1', 'Claude-Sonnet-4.5', 'Gemini-2.5-Pro'];
    const truth = new Map<string, { queryId: string; points: number; bot: string }>();
    let running = start(dir, poe.fetchJson);
    const REQUESTS = 400;
    for (let i = 0; i < REQUESTS; i++) {
      if (i === REQUESTS / 2) {
        // The proxy restarts in the middle: the new one learns what is pending from the ledger alone.
        stop(running);
        await running.ledger.flush();
        running = start(dir, poe.fetchJson);
        running.reconciler.seed(await running.ledger.read());
      }
      await clock.tickAsync(Math.floor(random() * 3_000));
      const bot = bots[Math.floor(random() * bots.length)];
      const startedAt = Date.now();
      const durationMs = 200 + Math.floor(random() * 8_000);
      const finishedAt = startedAt + durationMs;
      const points = 50 + Math.floor(random() * 5_000);
      const queryId = `q${i}`;
      // Poe lists the request at its end, visible only after a lag of 0–60 s.
      poe.entries.push({
        entry: { creation_time: (finishedAt - Math.floor(random() * 150)) * 1000, bot_name: bot, query_id: queryId, usage_type: 'API', cost_points: points },
        visibleAt: finishedAt + Math.floor(random() * 60_000),
      });
      const id = `req-${i}`;
      truth.set(id, { queryId, points, bot });
      const entry: LedgerEntry = ledgerEntry({ id, time: new Date(startedAt).toISOString(), model: bot, durationMs, points: 100, pointsEstimated: true });
      running.ledger.append(entry);
      running.reconciler.add(entry);
    }
    for (let s = 0; s < 600; s++) await clock.tickAsync(1_000);
    await running.ledger.flush();
    stop(running);

    const booked = await new Ledger({ dir, retentionMonths: 0 }).read();
    assert.equal(booked.length, REQUESTS, 'every request is in the ledger once');
    const actual = booked.filter((e) => !e.pointsEstimated);
    assert.ok(actual.length >= REQUESTS * 0.99, `${actual.length}/${REQUESTS} ended with actual points`);
    const used = actual.map((e) => e.queryId);
    assert.equal(new Set(used).size, used.length, 'no points_history entry was used twice');
    for (const e of actual) {
      assert.equal(e.replacedEstimate, 100, 'the entry says which estimate was replaced');
      const owner = [...truth.values()].find((t) => t.queryId === e.queryId);
      assert.equal(owner?.bot, e.model, 'matched to an entry of its own bot');
    }
    const exact = actual.filter((e) => truth.get(e.id)?.queryId === e.queryId).length;
    assert.ok(exact >= REQUESTS * 0.9, `${exact}/${REQUESTS} matched their own entry`);
    const expected = [...truth.values()].reduce((a, t) => a + t.points, 0);
    const total = booked.reduce((a, e) => a + (e.points ?? 0), 0);
    assert.ok(Math.abs(total - expected) <= expected * 0.01, `total ${total} vs actual ${expected}`);
    assert.ok(poe.calls() < 2_000, `${poe.calls()} points_history calls`);
  });

  it('pages back to an estimate that never shows up at most once a minute, however often new estimates arrive', async () => {
    const poe = laggingHistory();
    // 30 minutes of someone else's history: 1,800 entries, 18 pages.
    for (let i = 0; i < 1_800; i++)
      poe.entries.push({
        entry: { creation_time: (T0 - 1_800_000 + i * 1_000) * 1000, bot_name: 'Other-Bot', query_id: `o${i}`, usage_type: 'API', cost_points: 1 },
        visibleAt: 0,
      });
    const running = start(dir, poe.fetchJson);
    running.reconciler.add(ledgerEntry({ id: 'never', time: new Date(T0 - 1_700_000).toISOString(), points: 100, pointsEstimated: true }));
    for (let i = 0; i < 60; i++) {
      running.reconciler.add(ledgerEntry({ id: `fresh-${i}`, time: new Date(Date.now()).toISOString(), points: 100, pointsEstimated: true }));
      await clock.tickAsync(2_000);
    }
    // Deep walks (≤ 20 pages) about twice in these 2 minutes; every other pass reads one page.
    assert.ok(poe.calls() < 120, `${poe.calls()} points_history calls in 2 minutes`);
    stop(running);
  });

  it('skips entries the live matcher (or an earlier run) already used, and backs off while nothing new appears', async () => {
    const poe = laggingHistory();
    const running = start(dir, poe.fetchJson);
    const at = Date.now();
    poe.entries.push({ entry: { creation_time: at * 1000, bot_name: 'GPT-4.1', query_id: 'taken', usage_type: 'API', cost_points: 7 }, visibleAt: at });
    running.reconciler.seed([ledgerEntry({ id: 'live', time: new Date(at).toISOString(), queryId: 'taken', points: 7 })]);
    running.reconciler.add(ledgerEntry({ id: 'est', time: new Date(at).toISOString(), points: 100, pointsEstimated: true }));
    for (let s = 0; s < 300; s++) await clock.tickAsync(1_000);
    assert.equal(running.reconciler.pendingCount, 1, 'the taken entry is not given to the estimate');
    assert.ok(poe.calls() <= 10, `backed off: ${poe.calls()} calls in 5 min`);
    stop(running);
  });
});

describe('PointsReconciler matching', () => {
  /** The pairing by definition: every (entry, estimate) pair whose window holds the entry, sorted by distance (stable), taken greedily. */
  function referencePairs(pending: LedgerEntry[], entries: PointsEntry[], slackMs: number): Array<[string, string]> {
    const windows = pending.map((e) => {
      const startedAt = Date.parse(e.time);
      return { id: e.id, bot: e.model.toLowerCase(), from: startedAt - slackMs, to: startedAt + e.durationMs + slackMs, end: startedAt + e.durationMs };
    });
    const byStart = [...windows].sort((a, b) => a.from - b.from);
    const pairs: Array<{ w: (typeof windows)[0]; e: PointsEntry; d: number }> = [];
    for (const e of entries) {
      const t = e.creation_time / 1000;
      for (let j = byStart.length - 1; j >= 0; j--) {
        const w = byStart[j];
        if (w.bot === e.bot_name.toLowerCase() && w.from <= t && t <= w.to) pairs.push({ w, e, d: Math.abs(t - w.end) });
      }
    }
    pairs.sort((a, b) => a.d - b.d);
    const used = new Set<string>();
    const out: Array<[string, string]> = [];
    for (const { w, e, d } of pairs) {
      void d;
      if (used.has(w.id) || used.has(e.query_id)) continue;
      used.add(w.id).add(e.query_id);
      out.push([w.id, e.query_id]);
    }
    return out;
  }

  it('pairs a dense burst exactly as the closest-first sort over all pairs does, ties included', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = seededRandom(seed);
      const slackMs = 2_000;
      // 600 requests within 3 s on two bots (many windows hold each entry), times on a coarse grid so distances tie.
      const pending = Array.from({ length: 600 }, (_, i) =>
        ledgerEntry({
          id: `r${i}`,
          model: rnd() < 0.7 ? 'GPT-4.1' : 'Claude-Sonnet-4',
          time: new Date(T0 + Math.floor(rnd() * 30) * 100).toISOString(),
          durationMs: Math.floor(rnd() * 8) * 100,
          points: 5,
          pointsEstimated: true,
        }),
      );
      const entries: PointsEntry[] = Array.from({ length: 500 }, (_, i) => ({
        creation_time: (T0 + Math.floor(rnd() * 50) * 100 - 500) * 1000,
        bot_name: rnd() < 0.7 ? 'GPT-4.1' : 'Claude-Sonnet-4',
        query_id: `q${i}`,
        cost_points: 7,
      }));
      const claimed = new Set<string>();
      const got: Array<[string, string]> = [];
      const reconciler = new PointsReconciler({
        usage: {
          pointsPage: async () => ({ entries, hasMore: false }),
          isClaimed: (id) => claimed.has(id),
          markClaimed: (id) => void claimed.add(id),
        },
        correct: (c) => got.push([c.id, c.queryId]),
        maxAgeMs: 3_600_000,
        slackMs,
        now: () => T0 + 10_000,
      });
      pending.forEach((e) => reconciler.add(e));
      await reconciler.runOnce();
      reconciler.dispose();
      const want = referencePairs(pending, entries, slackMs);
      assert.ok(want.length > 300, `the burst pairs most estimates (${want.length})`);
      assert.deepEqual(got, want, `seed ${seed}`);
    }
  });
});
