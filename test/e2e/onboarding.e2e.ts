// A new user's first minutes in a real workbench (code-server + Chromium, a fresh profile, Poe replaced
// by a FakePoe): the walkthrough opens by itself on the first start, each of its steps ticks itself as
// the user does it (key, Copy Base URL, a request, Cost History), and the status bar tells the truth
// when Poe goes away (offline at start-up after a reload). Screenshots: test-results/e2e-onboarding-*.png
// (the README's status bar pictures in media/screenshots/ are copies of them).
import * as assert from 'node:assert';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { freePort, getJson, isHistoryReady, typeApiKey, waitFor } from './support';

let fake: FakePoe;
let proxyPort: number;
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- the list is the source of the Step type
const STEPS = ['setKey', 'pointTool', 'sendRequest', 'openHistory'] as const;

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: 1_234_567 });
  proxyPort = await freePort();
  return {
    settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': proxyPort },
    cleanup: () => fake.close(),
  };
}

/** The walkthrough's steps as the Welcome page shows them: step id -> ticked. */
async function ticks(page: Page): Promise<Record<string, boolean>> {
  return page.$$eval('.getting-started-step[data-step-id^="poe-proxy.poe-proxy-vscode#poeProxy.gettingStarted#"]', (els) =>
    Object.fromEntries(
      els.map((e) => [
        String((e as any).getAttribute('data-step-id'))
          .split('#')
          .pop(),
        (e as any).getAttribute('aria-checked') === 'true',
      ]),
    ),
  );
}

function ticked(page: Page, stepId: (typeof STEPS)[number]): Promise<true> {
  return waitFor(`the walkthrough step ${stepId} ticked`, async () => (await ticks(page))[stepId] === true);
}

/** POST one chat completion to the proxy (any client key: the proxy sends the stored Poe key). */
async function chat(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'Hello from the onboarding test.' }] }),
  });
  await res.text();
  return res.status;
}

export async function run({ step, helpers, page, artifactsDir, log }: E2eContext): Promise<void> {
  await step('the walkthrough opens by itself on the first start, no step ticked', async () => {
    await page.locator('.getting-started-step[data-step-id$="#poeProxy.gettingStarted#setKey"]').waitFor({ state: 'visible', timeout: 60_000 });
    await page.getByText('Get started with Poe Proxy').first().waitFor({ state: 'visible', timeout: 10_000 });
    assert.deepStrictEqual(await ticks(page), { setKey: false, pointTool: false, sendRequest: false, openHistory: false });
    await helpers.screenshot('walkthrough');
  });

  await step('setting the key ticks "Set your Poe API key"', async () => {
    await page
      .locator('.getting-started-step[data-step-id$="#setKey"] a, .getting-started-step[data-step-id$="#setKey"] .button-link', { hasText: 'Set API Key' })
      .first()
      .click({ timeout: 10_000 });
    await typeApiKey(page, DEFAULT_API_KEY);
    await ticked(page, 'setKey');
    await helpers.statusBarText(/Poe 1\.23M/);
  });

  await step('Copy Base URL ticks "Point a tool at the proxy"', async () => {
    await waitFor('the proxy serving', async () => (await getJson(proxyPort, '/health')).status === 200);
    await helpers.runCommand('Poe: Copy Base URL');
    await ticked(page, 'pointTool');
  });

  await step('the empty Cost History offers the next steps; "Open Walkthrough" goes back to it', async () => {
    await helpers.runCommand('Poe: Show Cost History');
    const frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
    const buttons = frame.locator('#history-table .next-steps button');
    await buttons.first().waitFor({ state: 'visible', timeout: 15_000 });
    assert.deepStrictEqual(await buttons.allTextContents(), ['Configure a Client…', 'Copy Base URL', 'Open Walkthrough']);
    await frame.click('#history-table .next-steps button[data-step="walkthrough"]');
    await page.locator('.getting-started-step[data-step-id$="#poeProxy.gettingStarted#sendRequest"]').waitFor({ state: 'visible', timeout: 15_000 });
  });

  await step('the first request ticks "Send a request"', async () => {
    assert.strictEqual(await chat(proxyPort), 200);
    await ticked(page, 'sendRequest');
  });

  await step('Show Cost History ticks "See what it cost"; the walkthrough shows all four done', async () => {
    await helpers.runCommand('Poe: Show Cost History');
    await helpers.runCommand('Poe: Get Started');
    await ticked(page, 'openHistory');
    assert.deepStrictEqual(await ticks(page), { setKey: true, pointTool: true, sendRequest: true, openHistory: true });
    await helpers.screenshot('walkthrough-done');
  });

  await step('screenshot of the status bar and its tooltip (running)', async () => {
    await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
    const item = page.locator('.statusbar-item', { hasText: 'Poe 1.2' }).first();
    await item.hover();
    const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'Poe Proxy' }).first();
    await hover.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match((await hover.textContent()) ?? '', /running/);
    await shotAround(page, [item, hover], path.join(artifactsDir, 'e2e-onboarding-statusbar-running.png'));
  });

  await step(
    'Poe unreachable at start-up: the status bar says offline and a notification says so',
    async () => {
      await fake.close();
      await page.evaluate(() => {
        (globalThis as any).e2eBeforeReload = true;
      });
      await helpers.runCommand('Developer: Reload Window');
      await waitFor('the workbench to reload', () => page.evaluate(() => !(globalThis as any).e2eBeforeReload), 60_000);
      const text = await helpers.statusBarText(/Poe: offline/, { timeout: 60_000 });
      log(`status bar: ${text}`);
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: "can't reach Poe" }).first();
      await toast.waitFor({ state: 'visible', timeout: 30_000 });
      const toastText = (await toast.textContent()) ?? '';
      assert.match(toastText, /Could not get an answer from Poe/);
      assert.match(toastText, /Retry/);
      assert.match(toastText, /Open Setting \(Base URL\)/);
      await helpers.screenshot('offline-at-start');
      const item = page.locator('.statusbar-item', { hasText: 'Poe: offline' }).first();
      await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
      await item.hover();
      const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: "can't reach Poe" }).first();
      await hover.waitFor({ state: 'visible', timeout: 10_000 });
      const tip = (await hover.textContent()) ?? '';
      assert.match(tip, /Could not get an answer from Poe/);
      assert.match(tip, /Retry · Open Setting \(Base URL\)/);
      await shotAround(page, [item, hover], path.join(artifactsDir, 'e2e-onboarding-statusbar-offline.png'));
    },
    { timeout: 150_000 },
  );
}

/** A screenshot of the smallest page area holding every locator (plus a margin). */
async function shotAround(page: Page, parts: Array<ReturnType<Page['locator']>>, file: string): Promise<void> {
  const boxes = (await Promise.all(parts.map((p) => p.boundingBox()))).filter((b): b is NonNullable<typeof b> => !!b);
  const x = Math.max(0, Math.min(...boxes.map((b) => b.x)) - 8);
  const y = Math.max(0, Math.min(...boxes.map((b) => b.y)) - 8);
  const right = Math.max(...boxes.map((b) => b.x + b.width)) + 8;
  const bottom = Math.max(...boxes.map((b) => b.y + b.height)) + 8;
  const vp = page.viewportSize() ?? { width: 1400, height: 900 };
  await page.screenshot({ path: file, clip: { x, y, width: Math.min(vp.width, right) - x, height: Math.min(vp.height, bottom) - y } });
}
