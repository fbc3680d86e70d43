/**
 * Cost truth against a fake Poe whose points_history lags: answers without a footer are never held for
 * the Usage API, the reconciler books the actual points later, the balance is always known, spending
 * budgets pause, and the ledger says which tool spent the points.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import type { LedgerCorrection } from '../../src/core/store/ledger';
import type { Logger } from '../../src/core/log';
import { FakePoe } from '../support/fake/server';
import { ledgerEntry } from '../support/ledgerFixtures';
import { fakePoeHooks, startProxy, TEST_FAKE_MODELS, type TestProxy } from '../support/proxyHarness';
import { ledgerEntries, postChat, refusedCounts } from '../support/rawClient';

type CostUsage = OpenAI.CompletionUsage & { cost_points?: number; cost_points_estimated?: boolean };
const user = (content: string) => [{ role: 'user' as const, content }];
const TOOLS = [{ type: 'function' as const, function: { name: 'read_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } }];

function nextCorrection(proxy: TestProxy): Promise<LedgerCorrection> {
  return new Promise((resolve) => {
    const sub = proxy.engine.onDidCorrectPoints((c) => {
      sub.dispose();
      resolve(c);
    });
  });
}

describe('cost truth', function () {
  let fake: FakePoe;
  let proxy: TestProxy;
  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });

  describe('with a points_history that lags', () => {
    let lagging: FakePoe;
    before(async () => {
      lagging = await FakePoe.start({ models: TEST_FAKE_MODELS, pointsLagMs: 1_500 });
    });
    after(() => lagging.close());
    beforeEach(() => lagging.reset());

    it('never holds a tool-call turn for points (estimate, marked estimated), then books the actual points as a correction', async () => {
      // A footer could wait a minute here: a tool-call turn has none, so it must not wait at all.
      proxy = await startProxy(lagging, { pointsWaitMs: 60_000 });
      lagging.reply = () => ({ toolCalls: [{ id: 'call_1', name: 'read_file', arguments: '{"path":"a.ts"}' }] });
      const corrected = nextCorrection(proxy);
      const stream = await proxy
        .client()
        .chat.completions.create({ model: 'GPT-4.1', messages: user('read a.ts'), tools: TOOLS, stream: true, stream_options: { include_usage: true } });
      let usage: CostUsage | undefined;
      for await (const c of stream) if (c.usage) usage = c.usage as CostUsage;
      assert.equal(usage?.cost_points_estimated, true, 'the usage chunk carries the estimate');
      const [booked] = await ledgerEntries(proxy, 1);
      assert.equal(booked.pointsEstimated, true);
      assert.equal(lagging.pointsHistory().length, 1);

      const c = await corrected;
      const charged = lagging.pointsHistory()[0];
      assert.deepEqual([c.points, c.queryId, c.estimate], [charged.cost_points, charged.query_id, usage?.cost_points]);
      await proxy.ledger.flush();
      const [after] = await proxy.ledger.read();
      assert.deepEqual([after.points, after.pointsEstimated, after.replacedEstimate], [charged.cost_points, false, usage?.cost_points]);
      assert.equal(proxy.engine.spend.spent().today, charged.cost_points, 'the running total follows the correction');
    });

    it('does not hold an Anthropic /v1/messages answer either', async () => {
      proxy = await startProxy(lagging, { pointsWaitMs: 60_000 });
      const corrected = nextCorrection(proxy);
      const res = await postChat(
        proxy.url,
        { model: 'Claude-Sonnet-4.5', max_tokens: 50, messages: user('hi') },
        { path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' } },
      );
      assert.equal(res.status, 200, res.body);
      const [booked] = await ledgerEntries(proxy, 1);
      assert.equal(booked.pointsEstimated, true, JSON.stringify(booked));
      assert.equal((await corrected).points, lagging.pointsHistory()[0].cost_points);
    });

    it('lets a footer wait only its budget, then shows the estimate marked est.', async () => {
      proxy = await startProxy(lagging, { pointsWaitMs: 100 });
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
      assert.match(res.choices[0].message.content ?? '', /Points: [\d,]+ \(est\.\)/);
      assert.equal((res.usage as CostUsage).cost_points_estimated, true);
    });
  });

  it('shows the exact balance in the footer with the cutoff off', async () => {
    proxy = await startProxy(fake, { pointsCutoff: 0 });
    fake.balance = 4_999_898;
    await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('first') });
    const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('second') });
    assert.match(res.choices[0].message.content ?? '', /Balance: \d{1,3}(,\d{3})+(?![\d.kM])/);
    assert.ok(
      fake.requests.some((r) => r.path === '/usage/current_balance'),
      'fetched although no cutoff needs it',
    );
  });

  describe('spending budgets', () => {
    it('warns in the footer at 80% and pauses at 100% without calling Poe, naming the budget and how to raise it', async () => {
      proxy = await startProxy(fake, { pointsBudgetDaily: 1_200, pointsWaitMs: 2_000 });
      fake.costPoints = () => 1_000;
      const first = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('one') });
      assert.match(first.choices[0].message.content ?? '', /83% of your daily points budget used \(1,000 of 1,200\)/);
      await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('two') });
      await ledgerEntries(proxy, 2);
      const calls = fake.chatRequests().length;
      const third = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('three') });
      assert.match(third.choices[0].message.content ?? '', /paused: your daily points budget of 1,200 is used up \(2,000 spent\).*POINTS_BUDGET_DAILY/);
      assert.equal(fake.chatRequests().length, calls, 'nothing was sent to Poe');
      assert.equal((await ledgerEntries(proxy, 2)).length, 2, 'the paused request reached no Poe: not a ledger line');
      assert.deepEqual(await refusedCounts(proxy), { paused: 1 });
    });

    it('counts what the ledger already holds for this month when it starts', async () => {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'poe-budget-'));
      const now = new Date();
      writeFileSync(
        path.join(dataDir, 'ledger.jsonl'),
        `${JSON.stringify(ledgerEntry({ time: new Date(now.getTime() - 60_000).toISOString(), points: 900 }))}\n`,
      );
      proxy = await startProxy(fake, { pointsBudgetMonthly: 800, dataDir });
      await proxy.engine.seeded;
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
      assert.match(res.choices[0].message.content ?? '', /monthly points budget of 800 is used up \(900 spent\)/);
      assert.equal(fake.chatRequests().length, 0);
      await proxy.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
  });

  it('records which tool sent a request, in the ledger and the log line', async () => {
    const lines: string[] = [];
    const log = (m: string): void => void lines.push(m);
    const logger: Logger = { trace: log, debug: log, info: log, warn: log, error: log };
    proxy = await startProxy(fake, {}, { logger });
    await postChat(proxy.url, { model: 'GPT-4.1', messages: user('hi') }, { headers: { 'user-agent': 'claude-cli/2.0.14 (external, cli)' } });
    await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('hi') });
    const entries = await ledgerEntries(proxy, 2);
    assert.deepEqual(entries.map((e) => e.client).sort(), ['Claude Code', 'OpenAI SDK (JS)']);
    assert.ok(
      lines.some((l) => /chat GPT-4\.1 ok 200 .* client Claude Code/.test(l)),
      lines.join('\n'),
    );
  });
});
