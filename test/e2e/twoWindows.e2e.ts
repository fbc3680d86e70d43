// Stop means stop, across windows: two VS Code windows on one profile (two pages of one browser context:
// shared globalState, each with its own extension host in code-server). Window 1 serves the port, window 2
// uses it; "Stop Proxy" in window 1 stops both and window 2 does not take the port over (its takeover check
// runs every 5 s), until "Start Proxy" in window 2 starts it again everywhere.
// Screenshots: test-results/e2e-twoWindows-stopped.png and e2e-twoWindows-window2-stopped.png.
import * as assert from 'node:assert';
import * as http from 'node:http';
import type { Page } from 'playwright-core';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, getJson, typeApiKey, waitFor } from './support';

let fake: FakePoe;
let proxyPort: number;
/** src/vscode/proxyController.ts: TAKEOVER_INTERVAL_MS and SHARED_STOP_POLL_MS. */
const TAKEOVER_INTERVAL_MS = 5_000;
const SHARED_STOP_POLL_MS = 2_000;

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: 4_321_000 });
  proxyPort = await freePort();
  return { settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': proxyPort }, cleanup: () => fake.close() };
}

/** Whether anything accepts a connection on the proxy port (a refused connection: nothing serves it). */
function portServed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(2000, () => req.destroy());
  });
}

/** The Poe item's accessible label in a window: "Poe proxy: <state>, balance …". */
async function poeState(page: Page): Promise<string> {
  const labels = await page.$$eval('.statusbar-item', (els) =>
    els.map((el) => el.getAttribute('aria-label') ?? el.querySelector('[aria-label]')?.getAttribute('aria-label') ?? ''),
  );
  return labels.find((l) => l.startsWith('Poe proxy:')) ?? '';
}

async function hoverTooltip(page: Page, itemText: string, tipText: string): Promise<string> {
  const item = page.locator('.statusbar-item', { hasText: itemText }).first();
  await item.hover();
  const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: tipText }).first();
  await hover.waitFor({ state: 'visible', timeout: 10_000 });
  return (await hover.textContent()) ?? '';
}

export async function run({ step, helpers, page, openWindow, log }: E2eContext): Promise<void> {
  let second: Awaited<ReturnType<E2eContext['openWindow']>>;

  await step('window 1: key set from the palette, its proxy serves the port', async () => {
    await helpers.statusBarText(/Poe: set key/, { timeout: 60_000 });
    await dismissWalkthrough(page);
    await helpers.runCommand('Poe: Set API Key');
    await typeApiKey(page, DEFAULT_API_KEY);
    await helpers.statusBarText(/Poe proxy: running/);
    assert.strictEqual((await getJson(proxyPort, '/health')).status, 200);
  });

  await step("window 2 opens on the same profile and uses window 1's proxy", async () => {
    second = await openWindow();
    const label = await second.helpers.statusBarText(/Poe proxy: served by another window/, { timeout: 60_000 });
    log(`window 2: ${label}`);
  });

  await step('"Stop Proxy" in window 1 stops both windows', async () => {
    await helpers.runCommand('Poe: Stop Proxy');
    await helpers.statusBarText(/Poe proxy: stopped/);
    await second.helpers.statusBarText(/Poe proxy: stopped/, { timeout: 20_000 });
    assert.match(await hoverTooltip(second.page, 'Poe', 'Stopped in every VS Code window'), /Start/);
    await second.helpers.screenshot('stopped');
    await helpers.screenshot('stopped');
  });

  await step('window 2 does not take the port over (watched for three takeover intervals)', async () => {
    // Nothing happening can only be watched for a while: three of window 2's takeover checks, plus a
    // shared-flag poll, with the port probed every 200 ms so a takeover undone a moment later shows too.
    const until = Date.now() + 3 * TAKEOVER_INTERVAL_MS + SHARED_STOP_POLL_MS;
    let probes = 0;
    while (Date.now() < until) {
      assert.strictEqual(await portServed(proxyPort), false, `port ${proxyPort} is served again after ${probes} probes`);
      probes++;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(await poeState(page), /^Poe proxy: stopped/);
    assert.match(await poeState(second.page), /^Poe proxy: stopped/);
    log(`port ${proxyPort} stayed free for ${probes} probes`);
  });

  await step('"Start Proxy" in window 2 starts it again; window 1 follows', async () => {
    await second.helpers.runCommand('Poe: Start Proxy');
    await waitFor('the port served again', () => portServed(proxyPort));
    await waitFor('both windows out of "stopped"', async () => {
      const states = [await poeState(page), await poeState(second.page)];
      return states.every((s) => /^Poe proxy: (running|served by another window)/.test(s)) && states;
    });
    const states = [await poeState(page), await poeState(second.page)];
    assert.strictEqual(states.filter((s) => s.startsWith('Poe proxy: running')).length, 1, `one window serves: ${JSON.stringify(states)}`);
  });
}
