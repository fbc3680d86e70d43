// The cost history in narrow editor groups, in both themes: at 1400, 700 and 350 px the page never
// scrolls sideways, the requests table stays inside its card, the columns that matter (time, model,
// points, status) stay visible and the time gets short; a failed request's reason opens from the
// keyboard; the export offers to open the file. Screenshots: test-results/e2e-historyWidths-<theme>-<width>[-requests].png.
import * as assert from 'node:assert';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, historyRows, isHistoryReady, typeApiKey, waitFor } from './support';

let fake: FakePoe;
let proxyPort: number;
const WIDTHS = [1400, 700, 350] as const;
const THEMES = { light: 'Default Light Modern', dark: 'Default Dark Modern' } as const; // dark: workbench.preferredDarkColorTheme's default
const PRIVATE_BOT = 'This bot is private: only its owner can use it through the API.';

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: 4_321_000 });
  proxyPort = await freePort();
  return {
    settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': proxyPort, 'workbench.colorTheme': THEMES.light },
    cleanup: () => fake.close(),
  };
}

async function chat(model: string, content: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });
  await res.text();
  return res.status;
}

/** What the layout looks like from inside the webview. */
function layout(frame: Frame) {
  return frame.evaluate(() => {
    const d = (globalThis as any).document;
    const visible = (e: any) => !!e && e.getClientRects().length > 0 && (globalThis as any).getComputedStyle(e).visibility !== 'hidden';
    const panel = d.querySelector('.requests-panel').getBoundingClientRect();
    const scroller = d.querySelector('.table-scroll');
    const row = d.querySelector('#history-table tbody tr.entry');
    const headers = Array.from(d.querySelectorAll('#history-table thead th') as any[]);
    const shownColumns = headers.filter((th) => visible(th)).map((th) => th.dataset.col);
    // A column is readable when its header lies inside the table's visible box (no sideways scrolling needed).
    const box = scroller.getBoundingClientRect();
    const readable = headers.filter((th) => visible(th) && th.getBoundingClientRect().right <= box.right + 1).map((th) => th.dataset.col);
    return {
      width: d.documentElement.clientWidth,
      pageScrollsSideways: d.documentElement.scrollWidth > d.documentElement.clientWidth + 1,
      tableInsideCard: box.right <= panel.right + 1 && box.left >= panel.left - 1,
      tableOverflows: scroller.scrollWidth > scroller.clientWidth + 1,
      shownColumns,
      readable,
      time: row ? (Array.from(row.querySelectorAll('time span') as any[]).find((s) => visible(s))?.textContent ?? '') : '',
    };
  });
}

async function setWidth(page: Page, frame: Frame, width: number): Promise<void> {
  await page.setViewportSize({ width, height: 900 });
  // The webview follows the editor's size a frame or two later.
  await waitFor(`the webview at ${width} px`, async () => {
    const w = await frame.evaluate(() => (globalThis as any).document.documentElement.clientWidth);
    return w <= width && w > width - 120;
  });
}

export async function run({ step, helpers, page, artifactsDir, log }: E2eContext): Promise<void> {
  await step('key set from the palette, three requests: two answered, one refused by Poe', async () => {
    await helpers.statusBarText(/Poe: set key/, { timeout: 60_000 });
    await dismissWalkthrough(page);
    await helpers.runCommand('Poe: Set API Key');
    await typeApiKey(page, DEFAULT_API_KEY);
    await helpers.statusBarText(/Poe 4\.32M/);
    assert.strictEqual(await chat('GPT-4.1', 'First request for the narrow-width check.'), 200);
    assert.strictEqual(await chat('Claude-Sonnet-4.5', 'Second request, a longer model name.'), 200);
    fake.enqueueFault({ kind: 'status', status: 403, message: PRIVATE_BOT }, { path: '/v1/chat/completions' });
    assert.strictEqual(await chat('GPT-4.1', 'Third request, refused by Poe.'), 403);
  });

  let frame: Frame = await step('the history view opens, with an icon on its tab', async () => {
    await helpers.runCommand('Poe: Show Cost History');
    const f = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
    await waitFor('three rows', async () => (await historyRows(f)).length === 3);
    const tab = page.locator('.tabs-container .tab', { hasText: 'Poe Cost History' }).first();
    const icon = await tab.evaluate((t: any) => (globalThis as any).getComputedStyle(t.querySelector('.monaco-icon-label') ?? t, '::before').backgroundImage);
    assert.match(icon, /history-(light|dark)\.svg/, `tab icon: ${icon}`);
    // Only the history view in the editor area: close the side bar, the walkthrough and the toasts.
    await helpers.runCommand('View: Close Primary Side Bar').catch(() => undefined);
    await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
    return f;
  });

  await step("a failed request's reason opens from the keyboard (status button, details row)", async () => {
    const toggle = frame.locator('#history-table tr.entry[data-status="error"] button.details-toggle');
    await toggle.focus();
    assert.strictEqual(await toggle.getAttribute('aria-expanded'), 'false');
    await frame.page().keyboard.press('Enter');
    const details = frame.locator('#history-table tr.details');
    await details.waitFor({ state: 'visible', timeout: 5_000 });
    const text = (await details.textContent()) ?? '';
    assert.ok(text.includes(PRIVATE_BOT), text);
    assert.match(text, /HTTP 403/);
    assert.strictEqual(await toggle.getAttribute('aria-expanded'), 'true');
    const legend = (await frame.textContent('#points-legend')) ?? '';
    assert.match(legend, /actual: Poe's own figure.*est\.: estimated/);
    assert.match((await frame.getAttribute('th[data-col="kind"]', 'title')) ?? '', /est\.: estimated/);
  });

  for (const theme of Object.keys(THEMES) as Array<keyof typeof THEMES>) {
    await step(`${theme} theme`, async () => {
      // The module starts in the light theme; the palette's toggle switches to the preferred dark one.
      if (theme === 'dark') await helpers.runCommand('Preferences: Toggle between Light/Dark Themes');
      frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
      // The webview's body carries the theme kind (vscode-light / vscode-dark).
      await waitFor(`the ${theme} theme in the webview`, () =>
        frame.evaluate((cls) => (globalThis as any).document.body.classList.contains(cls), `vscode-${theme}`),
      );
    });
    for (const width of WIDTHS) {
      await step(`${theme}, ${width} px: no sideways page scroll, the table inside its card, time/model/points/status readable`, async () => {
        await setWidth(page, frame, width);
        const l = await layout(frame);
        log(
          `${theme} ${width}px: webview ${l.width}px, columns ${l.shownColumns.join(',')}, readable ${l.readable.join(',')}, time "${l.time}"${l.tableOverflows ? ', table scrolls in its box' : ''}`,
        );
        assert.strictEqual(l.pageScrollsSideways, false, 'the page does not scroll sideways');
        assert.strictEqual(l.tableInsideCard, true, 'the table stays inside its card');
        for (const col of ['time', 'model', 'points', 'status']) assert.ok(l.readable.includes(col), `${col} readable at ${width}px: ${JSON.stringify(l)}`);
        if (width === 1400) {
          assert.deepStrictEqual(l.shownColumns, [
            'time',
            'model',
            'tokensIn',
            'tokensOut',
            'points',
            'kind',
            'balanceAfter',
            'status',
            'durationMs',
            'client',
          ]);
          assert.match(l.time, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
        } else {
          assert.match(l.time, /^\d{2}-\d{2} \d{2}:\d{2}$/, 'short time when narrow');
        }
        if (width === 700) {
          assert.ok(l.readable.includes('durationMs'), 'duration still shown at half width');
          assert.ok(l.shownColumns.includes('client'), 'the client (tool) still shown at half width');
        }
        if (width === 350) assert.ok(!l.shownColumns.includes('client'), 'the client column goes first when very narrow');
        const webview = page.locator('iframe.webview.ready').first();
        await frame.evaluate(() => (globalThis as any).scrollTo(0, 0));
        await webview.screenshot({ path: path.join(artifactsDir, `e2e-historyWidths-${theme}-${width}.png`), timeout: 15_000 });
        // The requests table is below the fold in a narrow view: a second picture of it.
        await frame.locator('.requests-panel').scrollIntoViewIfNeeded();
        await webview.screenshot({ path: path.join(artifactsDir, `e2e-historyWidths-${theme}-${width}-requests.png`), timeout: 15_000 });
      });
    }
  }

  await step('after an export, "Open" opens the CSV file', async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    await frame.click('#export-csv');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await waitFor('the proposed file name', async () => /\.csv$/.test(await input.inputValue()));
    await page.keyboard.press('Enter');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'exported 3 requests to' }).first();
    await toast.waitFor({ state: 'visible', timeout: 15_000 });
    assert.match((await toast.textContent()) ?? '', /Reveal in Explorer/);
    await toast.getByRole('button', { name: 'Open' }).click();
    await page
      .locator('.tabs-container .tab', { hasText: /poe-cost-history-.*\.csv/ })
      .first()
      .waitFor({ timeout: 15_000 });
  });
}
