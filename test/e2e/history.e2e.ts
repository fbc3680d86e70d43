// The whole user path in a real workbench (code-server + Chromium), the extension loaded from this
// folder, Poe replaced by a FakePoe: set the key through the command palette's password box, see the
// fake's balance in the status bar, send requests with the official openai SDK, and find them in the
// cost-history webview (live update, filter, sort, state restored after the panel was hidden).
// Screenshots: test-results/e2e-history-*.png.
import * as assert from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import type { Frame } from 'playwright-core';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { clickTab, COL, dismissWalkthrough, freePort, grouped, historyRows, isHistoryReady, totalsCards, typeApiKey, waitFor } from './support';

const BALANCE = 3_456_789; // shown as "Poe 3.46M"
const TAB_TITLE = 'Poe Cost History';

let fake: FakePoe;
let proxyPort: number;

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: BALANCE });
  proxyPort = await freePort();
  return {
    // User settings: the extension reads the base URL and port only from there.
    settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': proxyPort },
    cleanup: () => fake.close(),
  };
}

export async function run({ step, helpers, page, artifactsDir, workspace, log }: E2eContext): Promise<void> {
  await step('the status bar asks for a key on a fresh install', () => helpers.statusBarText(/Poe: set key/, { timeout: 60_000 }));
  await step('the walkthrough opens on the first start; closed for this module', () => dismissWalkthrough(page));

  await step('"Poe: Set API Key" from the command palette stores a key the fake accepts', async () => {
    await helpers.runCommand('Poe: Set API Key');
    const box = await typeApiKey(page, DEFAULT_API_KEY);
    await box.waitFor({ state: 'hidden', timeout: 15_000 });
    // The key is checked (after the box closes) against the fake's balance endpoint with the typed key.
    await waitFor('the key check at the fake', () =>
      fake.requests.some((r) => r.path === '/usage/current_balance' && r.headers.authorization === `Bearer ${DEFAULT_API_KEY}`),
    );
  });

  await step("the status bar shows the fake upstream's balance", () => helpers.statusBarText(/Poe 3\.46M/));

  const client = new OpenAI({ baseURL: `http://127.0.0.1:${proxyPort}/v1`, apiKey: 'not-a-poe-key', maxRetries: 0, timeout: 30_000 });
  const first = await step('a chat completion sent with the openai SDK goes through the proxy', async () => {
    const c = await client.chat.completions.create({
      model: 'GPT-4.1',
      messages: [{ role: 'user', content: 'Tell me about the end-to-end test of the cost history view.' }],
    });
    assert.strictEqual(c.choices[0].finish_reason, 'stop');
    const usage = c.usage as OpenAI.CompletionUsage & { cost_points?: number; cost_points_estimated?: boolean };
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, JSON.stringify(usage));
    assert.strictEqual(typeof usage.cost_points, 'number', JSON.stringify(usage));
    // The SDK's Authorization never reaches Poe; the stored key does.
    const upstream = fake.requests.filter((r) => r.path === '/v1/chat/completions');
    assert.strictEqual(upstream.at(-1)?.headers.authorization, `Bearer ${DEFAULT_API_KEY}`);
    return { usage, points: usage.cost_points as number };
  });
  log(
    `request 1: ${first.usage.prompt_tokens} in / ${first.usage.completion_tokens} out, ${first.points} points${first.usage.cost_points_estimated ? ' (est.)' : ''}`,
  );

  let frame: Frame = await step('"Poe: Show Cost History" opens the webview', async () => {
    await helpers.runCommand('Poe: Show Cost History');
    return helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
  });

  await step("the request's row shows its model, tokens and points", async () => {
    const rows = await waitFor('a GPT-4.1 row', async () => {
      const r = await historyRows(frame);
      return r.length > 0 && r;
    });
    assert.strictEqual(rows.length, 1, JSON.stringify(rows));
    const c = rows[0].cells;
    assert.strictEqual(rows[0].model, 'GPT-4.1');
    assert.strictEqual(c[COL.model], 'GPT-4.1');
    assert.strictEqual(c[COL.tokensIn], grouped(first.usage.prompt_tokens));
    assert.strictEqual(c[COL.tokensOut], grouped(first.usage.completion_tokens));
    assert.strictEqual(c[COL.points], grouped(first.points));
    assert.strictEqual(c[COL.kind], first.usage.cost_points_estimated ? 'est.' : 'actual');
    assert.strictEqual(c[COL.status], 'ok');
    // Balance after = the cached balance minus the points: exactly what the fake holds when the
    // points are Poe's own (an estimate under heavy load differs from the fake's real charge).
    if (first.usage.cost_points_estimated) assert.match(c[COL.balanceAfter], /^3,456,\d{3}$/);
    else assert.strictEqual(c[COL.balanceAfter], grouped(fake.balance), 'balance after = what the fake holds now');
    const cards = await totalsCards(frame);
    assert.strictEqual(cards.Requests, '1');
    assert.strictEqual(cards.Points, grouped(first.points));
  });

  const second = await step('a streamed request while the view is open appears live (no reload)', async () => {
    await frame.evaluate(() => {
      (globalThis as any).document.body.dataset.e2eMarker = 'same-document';
    });
    const stream = await client.chat.completions.create({
      model: 'Claude-Sonnet-4.5',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'A second, streamed request for the live update.' }],
    });
    let usage: (OpenAI.CompletionUsage & { cost_points?: number }) | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    assert.ok(usage && typeof usage.cost_points === 'number', `usage chunk: ${JSON.stringify(usage)}`);
    const rows = await waitFor('the Claude row', async () => {
      const r = await historyRows(frame);
      return r.some((x) => x.model === 'Claude-Sonnet-4.5') && r;
    });
    assert.strictEqual(rows.length, 2);
    assert.strictEqual(rows[0].model, 'Claude-Sonnet-4.5', 'newest first');
    assert.strictEqual(rows[0].cells[COL.points], grouped(usage.cost_points!));
    assert.strictEqual(await frame.evaluate(() => (globalThis as any).document.body.dataset.e2eMarker), 'same-document', 'updated in place');
    await waitFor('totals to count both', async () => (await totalsCards(frame)).Requests === '2');
    const byModel = await frame.$$eval('#totals-by-model tbody tr th', (ths) => ths.map((t) => t.textContent));
    assert.deepStrictEqual([...byModel].sort(), ['Claude-Sonnet-4.5', 'GPT-4.1']);
    const bars = await frame.$$eval('#points-chart rect.bar', (r) => r.length);
    assert.ok(bars >= 1, 'the chart has a bar for today');
    return { points: usage.cost_points! };
  });

  await step('the webview runs under a strict CSP, its script from dist/webview/ with the nonce', async () => {
    const info = await frame.evaluate(() => {
      const d = (globalThis as any).document;
      const scripts = Array.from(d.scripts as any[]);
      return {
        csp: d.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content') ?? '',
        scripts: scripts.map((s) => ({ src: s.src as string, nonce: s.nonce as string, inline: !s.src })),
      };
    });
    assert.match(info.csp, /default-src 'none'/);
    const nonce = /script-src 'nonce-([^']+)'/.exec(info.csp)?.[1];
    assert.ok(nonce && nonce.length >= 16, info.csp);
    assert.ok(!/unsafe-inline|unsafe-eval/.test(info.csp), info.csp);
    // VS Code injects its own inline preamble (acquireVsCodeApi); ours is the one external script.
    const ours = info.scripts.filter((x) => !x.inline);
    assert.strictEqual(ours.length, 1, JSON.stringify(info.scripts));
    assert.match(ours[0].src, /^https:\/\/.*\.vscode-resource\..*\/dist\/webview\/history\.js$/, 'loaded through asWebviewUri');
    assert.strictEqual(ours[0].nonce, nonce);
  });

  await step("the webview is themed with VS Code's CSS variables", async () => {
    const theme = await frame.evaluate(() => {
      const d = (globalThis as any).document;
      const get = (e: any) => (globalThis as any).getComputedStyle(e);
      const probe = d.createElement('div');
      probe.style.backgroundColor = 'var(--vscode-editor-background)';
      probe.style.color = 'var(--vscode-foreground)';
      d.body.appendChild(probe);
      const r = {
        editorBg: get(d.documentElement).getPropertyValue('--vscode-editor-background').trim(),
        varBg: get(probe).backgroundColor,
        varFg: get(probe).color,
        bodyBg: get(d.body).backgroundColor,
        bodyFg: get(d.body).color,
      };
      probe.remove();
      return r;
    });
    assert.ok(theme.editorBg, 'the workbench passes its theme colours');
    assert.strictEqual(theme.bodyBg, theme.varBg);
    assert.strictEqual(theme.bodyFg, theme.varFg);
  });

  await step('screenshot of the history view with the requests', async () => {
    // Toasts float over the editor area; clear them so the webview is fully visible.
    await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
    const full = await helpers.screenshot('history');
    const webview = path.join(artifactsDir, 'e2e-history-webview.png');
    await page.locator('iframe.webview.ready').first().screenshot({ path: webview, timeout: 15_000 });
    log(`screenshots: ${path.relative(process.cwd(), full)}, ${path.relative(process.cwd(), webview)}`);
  });

  await step('the model filter narrows rows and totals', async () => {
    await frame.selectOption('#filter-model', 'GPT-4.1');
    await waitFor('only GPT-4.1 rows', async () => {
      const r = await historyRows(frame);
      return r.length === 1 && r[0].model === 'GPT-4.1';
    });
    await waitFor('totals of the filtered rows', async () => {
      const cards = await totalsCards(frame);
      return cards.Requests === '1' && cards.Points === grouped(first.points);
    });
    // A date range that excludes today empties the table.
    await frame.fill('#filter-to', '2001-01-01');
    await frame.dispatchEvent('#filter-to', 'change');
    await waitFor(
      'the empty-range message',
      async () => (await historyRows(frame)).length === 0 && (await frame.textContent('#history-table tbody'))?.includes('No requests match'),
    );
    await frame.fill('#filter-to', '');
    await frame.dispatchEvent('#filter-to', 'change');
    await waitFor('GPT-4.1 row back', async () => (await historyRows(frame)).length === 1);
    // Sort by points ascending (click twice: first click sorts descending).
    await frame.click('button.sort-button[data-sort="points"]');
    await frame.click('button.sort-button[data-sort="points"]');
    assert.strictEqual(await frame.getAttribute('th[data-sort="points"]', 'aria-sort'), 'ascending');
  });

  await step('the view keeps its filter and sort after being hidden and shown again', async () => {
    await frame.evaluate(() => {
      (globalThis as any).document.body.dataset.e2eMarker = 'before-hide';
    });
    await helpers.runCommand('File: New Untitled Text File');
    await waitFor('the webview to be torn down or hidden', async () => !(await frame.isVisible('#history-table').catch(() => false)));
    await clickTab(page, TAB_TITLE);
    frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
    const marker = await frame.evaluate(() => (globalThis as any).document.body.dataset.e2eMarker ?? null);
    assert.strictEqual(marker, null, 'a fresh document (retainContextWhenHidden is off), so the state really came from setState');
    assert.strictEqual(await frame.inputValue('#filter-model'), 'GPT-4.1');
    assert.strictEqual(await frame.getAttribute('th[data-sort="points"]', 'aria-sort'), 'ascending');
    const rows = await waitFor('the restored rows', async () => {
      const r = await historyRows(frame);
      return r.length > 0 && r;
    });
    assert.deepStrictEqual(
      rows.map((r) => r.model),
      ['GPT-4.1'],
    );
    await frame.click('#clear-filters');
    await waitFor('both rows after Clear', async () => (await historyRows(frame)).length === 2);
    const cards = await totalsCards(frame);
    assert.strictEqual(cards.Points, grouped(first.points + second.points));
  });

  await step('Export CSV writes the filtered rows to the file picked in the save dialog', async () => {
    await frame.selectOption('#filter-model', 'Claude-Sonnet-4.5');
    await waitFor('only the Claude row', async () => {
      const r = await historyRows(frame);
      return r.length === 1 && r[0].model === 'Claude-Sonnet-4.5';
    });
    await frame.click('#export-csv');
    // code-server's save dialog is a quick input holding the proposed path (in the workspace).
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    // The dialog fills the value in steps (folder first); wait for the proposed file name.
    await waitFor('the proposed file name', async () => /\/poe-cost-history-Claude-Sonnet-4\.5-\d{4}-\d{2}-\d{2}\.csv$/.test(await input.inputValue()));
    await page.keyboard.press('Enter');
    const status = await waitFor('the export status', async () => {
      const t = (await frame.textContent('#export-status')) ?? '';
      return t.startsWith('Export') && !t.startsWith('Exporting') && t;
    });
    assert.equal(status, 'Exported 1 request.');
    const files = readdirSync(workspace).filter((f) => f.endsWith('.csv'));
    assert.strictEqual(files.length, 1, JSON.stringify(files));
    const lines = readFileSync(path.join(workspace, files[0]), 'utf8').split(/\r?\n/).filter(Boolean);
    assert.strictEqual(lines.length, 2, 'header + the one filtered row');
    assert.match(lines[0], /model/);
    assert.ok(lines[1].includes('Claude-Sonnet-4.5') && !lines[1].includes('GPT-4.1'), lines[1]);
  });

  await step(
    'after a window reload the panel is restored with its filter',
    async () => {
      // Mark this document so that only frames of the reloaded workbench can match below.
      await page.evaluate(() => {
        (globalThis as any).e2eBeforeReload = true;
      });
      await helpers.runCommand('Developer: Reload Window');
      await waitFor('the workbench to reload', () => page.evaluate(() => !(globalThis as any).e2eBeforeReload), 60_000);
      await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 60_000 });
      frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 45_000 });
      // The skeleton shows first; the script restores the filter once it runs (after activation).
      await waitFor('the restored model filter', async () => (await frame.inputValue('#filter-model')) === 'Claude-Sonnet-4.5', 30_000);
      const rows = await waitFor('the restored rows', async () => {
        const r = await historyRows(frame);
        return r.length > 0 && r;
      });
      assert.deepStrictEqual(
        rows.map((r) => r.model),
        ['Claude-Sonnet-4.5'],
      );
    },
    { timeout: 120_000 },
  );
}
