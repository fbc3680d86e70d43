// Requests refused before reaching Poe are counted, not listed one by one (#14): two tools stuck in a loop
// against the proxy's rate limit show in the Cost History as one summary line per minute, tool and reason
// ("39 requests refused by the rate limit, 2026-12-01 14:02–14:03, from Aider"), above the requests table,
// which keeps only the requests that reached Poe. Checked at 1400 and 350 px.
// Screenshots: test-results/e2e-historyRefused-<1400|350>.png.
import * as assert from 'node:assert';
import * as path from 'node:path';
import type { Frame } from 'playwright-core';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, historyRows, showHistoryAlone, typeApiKey, waitFor } from './support';

let fake: FakePoe;
let proxyPort: number;
/**
 * The rate limit is per client address (both tools are on 127.0.0.1): the first request gets through (burst 1,
 * then one a minute), every later one from either tool is refused with 429 and counted for the tool that sent it.
 */
const LOOP = { Aider: { ua: 'aider/0.86.1', sent: 40, refused: 39 }, 'Claude Code': { ua: 'claude-cli/2.0.14 (external, cli)', sent: 12, refused: 12 } };

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: 4_321_000 });
  proxyPort = await freePort();
  return {
    settings: {
      'poeProxy.baseURL': fake.url,
      'poeProxy.port': proxyPort,
      'poeProxy.rateLimit.requestsPerMinute': 1,
      'poeProxy.rateLimit.burst': 1,
    },
    cleanup: () => fake.close(),
  };
}

async function chat(userAgent: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': userAgent },
    body: JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'retry until it works' }] }),
  });
  await res.text();
  return res.status;
}

function refusedView(frame: Frame) {
  return frame.evaluate(() => {
    const d = (globalThis as any).document;
    const box = d.getElementById('refused');
    const visible = (e: any) => !!e && e.getClientRects().length > 0;
    return {
      shown: visible(box) && !box.hidden,
      open: !!box?.open,
      summary: (d.getElementById('refused-summary')?.textContent ?? '').trim(),
      items: Array.from(d.querySelectorAll('#refused-list li') as any[]).map((li) => (li.textContent ?? '').trim()),
      itemsFit: Array.from(d.querySelectorAll('#refused-list li') as any[]).every(
        (li) => li.getBoundingClientRect().right <= d.documentElement.clientWidth + 1,
      ),
      pageScrollsSideways: d.documentElement.scrollWidth > d.documentElement.clientWidth + 1,
    };
  });
}

export async function run({ step, helpers, page, artifactsDir, log }: E2eContext): Promise<void> {
  const statuses: Record<string, number[]> = {};
  await step('two tools loop against the rate limit: the first request reaches Poe, the rest are refused', async () => {
    await helpers.statusBarText(/Poe: set key/, { timeout: 60_000 });
    await dismissWalkthrough(page);
    await helpers.runCommand('Poe: Set API Key');
    await typeApiKey(page, DEFAULT_API_KEY);
    await helpers.statusBarText(/Poe 4\.32M/);
    for (const [tool, { ua, sent, refused }] of Object.entries(LOOP)) {
      statuses[tool] = [];
      for (let i = 0; i < sent; i++) statuses[tool].push(await chat(ua));
      assert.strictEqual(statuses[tool].filter((s) => s === 429).length, refused, `${tool}: ${statuses[tool].join(',')}`);
    }
    assert.deepStrictEqual(statuses.Aider[0], 200);
  });

  let frame: Frame;
  await step('the Cost History lists the answered request, and one refused line per tool', async () => {
    frame = await showHistoryAlone(helpers);
    const rows = await waitFor('the answered request', async () => {
      const r = await historyRows(frame);
      return r.length > 0 && r;
    });
    assert.deepStrictEqual(
      rows.map((r) => r.status),
      ['ok'],
      'only the request that reached Poe has a row',
    );
    const refusedTotal = LOOP.Aider.refused + LOOP['Claude Code'].refused;
    const view = await waitFor('the refused summary', async () => {
      const v = await refusedView(frame);
      return v.shown && v.items.length === 2 && v;
    });
    assert.strictEqual(view.summary, `${refusedTotal} requests refused before reaching Poe (no points spent)`);
    await frame.click('#refused-summary');
    assert.ok((await refusedView(frame)).open, 'the summary opens the list');
    const line = (tool: keyof typeof LOOP) =>
      new RegExp(`^${LOOP[tool].refused} requests refused by the rate limit, \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}(–\\d{2}:\\d{2})?, from ${tool}$`);
    const items = (await refusedView(frame)).items;
    log(`refused lines: ${JSON.stringify(items)}`);
    assert.ok(
      items.some((t) => line('Aider').test(t)),
      JSON.stringify(items),
    );
    assert.ok(
      items.some((t) => line('Claude Code').test(t)),
      JSON.stringify(items),
    );
  });

  for (const width of [1400, 350]) {
    await step(`at ${width} px the refused lines wrap inside the page (no sideways scroll); screenshot`, async () => {
      await page.setViewportSize({ width, height: 900 });
      await waitFor(`the webview at ${width} px`, async () => {
        const w = await frame.evaluate(() => (globalThis as any).document.documentElement.clientWidth);
        return w <= width && w > width - 120;
      });
      const v = await refusedView(frame);
      assert.ok(v.open && v.items.length === 2, JSON.stringify(v));
      assert.ok(!v.pageScrollsSideways, 'the page does not scroll sideways');
      assert.ok(v.itemsFit, 'every refused line fits the width');
      await frame.locator('#refused').scrollIntoViewIfNeeded();
      const webview = page.locator('iframe.webview.ready').first();
      await webview.screenshot({ path: path.join(artifactsDir, `e2e-historyRefused-${width}.png`), timeout: 15_000 });
    });
  }
}
