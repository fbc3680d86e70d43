// Section 6: what accounting adds to a turn when Poe's points_history lags (5 s, longer than any wait).
// Two proxies on one lagging fake: default settings, and POINTS_WAIT_MS=0 (accounting never waits); the
// turns take turns between them, and the difference of the medians is the time accounting added.
//   - a tool-call turn (non-streaming, no footer): must add nothing;
//   - a streamed text turn (footer): at most the footer's wait budget (POINTS_WAIT_MS, default 400 ms).
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { makeAgent, post } from './load.mjs';
import { startProxy } from './relay.mjs';
import { median } from './stats.mjs';

const LAG_MS = 5_000;
const TOOL_BODY = JSON.stringify({
  model: 'GPT-4.1',
  messages: [{ role: 'user', content: 'read a.ts' }],
  tools: [{ type: 'function', function: { name: 'read_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } }],
  bench: { tool: true },
});
const TEXT_BODY = JSON.stringify({
  model: 'GPT-4.1',
  messages: [{ role: 'user', content: 'hello there' }],
  stream: true,
  stream_options: { include_usage: true },
});

export async function accountingRun(build, resultsDir, { turns = 10 } = {}) {
  const { FakePoe } = createRequire(import.meta.url)(build.support);
  const fake = await FakePoe.start({ balance: 1e12, pointsLagMs: LAG_MS });
  const defaultReply = fake.reply;
  fake.reply = (body, rec) => (body?.bench?.tool ? { toolCalls: [{ name: 'read_file', arguments: '{"path":"a.ts"}' }] } : defaultReply(body, rec));
  const withAccounting = await startProxy(build.cli, fake.url, {}, path.join(resultsDir, 'proxy-accounting.log'));
  const without = await startProxy(build.cli, fake.url, { POINTS_WAIT_MS: '0' }, path.join(resultsDir, 'proxy-accounting-off.log'));
  const agent = makeAgent(1);
  try {
    const times = { tool: { on: [], off: [] }, text: { on: [], off: [] } };
    for (const [kind, body] of [
      ['tool', TOOL_BODY],
      ['text', TEXT_BODY],
    ]) {
      await post(withAccounting.url, agent, body); // warm-up
      await post(without.url, agent, body);
      for (let i = 0; i < turns; i++) {
        for (const [which, p] of i % 2
          ? [
              ['off', without],
              ['on', withAccounting],
            ]
          : [
              ['on', withAccounting],
              ['off', without],
            ]) {
          const r = await post(p.url, agent, body);
          if (r.status !== 200) throw new Error(`accounting bench: ${kind} turn answered ${r.status}`);
          times[kind][which].push(r.totalMs);
        }
      }
    }
    const added = (k) => median(times[k].on) - median(times[k].off);
    return {
      lagMs: LAG_MS,
      turns,
      footerBudgetMs: 400,
      toolCallAddedMs: added('tool'),
      textAddedMs: added('text'),
      medians: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, { on: median(v.on), off: median(v.off) }])),
    };
  } finally {
    agent.destroy();
    for (const p of [withAccounting, without]) p.child.kill('SIGTERM');
    await fake.close();
    await new Promise((r) => setTimeout(r, 300));
    for (const p of [withAccounting, without]) rmSync(p.dataDir, { recursive: true, force: true });
  }
}
