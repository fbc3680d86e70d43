// The first open after an upgrade (#14): the data directory holds three closed months as an older version
// left them (one gzip member each, no index) and a busy current month. The Cost History opens at once with
// the current month's totals and a calm note that older months are being counted; as the ledger counts
// them in the background the totals fill in by themselves, the note goes, and the rows and the scroll
// position stay. The count is slowed by a test seam (POE_PROXY_TEST_LEDGER_COUNT_PAUSE_MS) so the partial
// state can be looked at. Screenshots at 1400 and 350 px in both themes:
// test-results/e2e-historyCounting-<partial|complete>-<theme>-<width>.png.
import * as assert from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Frame, Page } from 'playwright-core';
import type { E2eContext, E2ePrepare } from './harness';
import { gzName, liveName, monthOf } from '../../src/core/store/ledgerFiles';
import { dismissWalkthrough, globalStorageDir, grouped, historyRows, isHistoryReady, showHistoryAlone, totalsCards, waitFor } from './support';

const THEMES = { light: 'Default Light Modern', dark: 'Default Dark Modern' } as const;
const WIDTHS = [1400, 350] as const;
/** Per file of the background count: three files, so about 18 s of partial totals. */
const PAUSE_MS = 6_000;
const CURRENT_ENTRIES = 2_100; // more than one page (2,000 rows): the first page needs no older month
const OLD_ENTRIES = 300;
const OLD_ONLY_MODEL = 'Gemini-2.5-Pro';

export function prepare(): E2ePrepare {
  return {
    settings: { 'poeProxy.autoStart': false, 'workbench.colorTheme': THEMES.light },
    env: { POE_PROXY_TEST_LEDGER_COUNT_PAUSE_MS: String(PAUSE_MS) },
  };
}

function entryLines(count: number, from: number, to: number, model: (i: number) => string, prefix: string): string {
  const step = (to - from) / count;
  let text = '';
  for (let i = 0; i < count; i++) {
    text += `${JSON.stringify({
      time: new Date(from + Math.floor(i * step)).toISOString(),
      id: `${prefix}-${i}`,
      model: model(i),
      endpoint: 'chat',
      stream: false,
      status: 'ok',
      httpStatus: 200,
      tokensIn: 1200,
      tokensOut: 300,
      points: 40 + (i % 9),
      pointsEstimated: false,
      balanceAfter: 4_000_000 - i,
      durationMs: 900,
      clipped: false,
      retries: 0,
      client: i % 2 === 0 ? 'claude-code' : 'aider',
    })}\n`;
  }
  return text;
}

/** The ledger directory as an upgrade finds it: three old-format closed months, the current month live, no index. */
function writeLedger(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const now = Date.now();
  const monthStart = (back: number): Date => {
    const d = new Date(now);
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1));
  };
  for (const back of [3, 2, 1]) {
    const start = monthStart(back).getTime();
    const end = monthStart(back - 1).getTime() - 60_000;
    const text = entryLines(OLD_ENTRIES, start, end, (i) => (i % 3 === 0 ? OLD_ONLY_MODEL : 'GPT-4.1'), `old${back}`);
    writeFileSync(path.join(dir, gzName(monthOf(monthStart(back)))), gzipSync(text));
  }
  const start = monthStart(0).getTime();
  writeFileSync(
    path.join(dir, liveName(monthOf(monthStart(0)))),
    entryLines(CURRENT_ENTRIES, start, Math.max(start + 60_000, now - 60_000), (i) => (i % 2 === 0 ? 'GPT-4.1' : 'Claude-Sonnet-4.5'), 'now'),
  );
}

function countingView(frame: Frame) {
  return frame.evaluate(() => {
    const d = (globalThis as any).document;
    const note = d.getElementById('totals-pending');
    return {
      note: note && !note.hidden && note.getClientRects().length > 0 ? (note.textContent ?? '').trim() : '',
      noteFits: !note || note.hidden || note.getBoundingClientRect().right <= d.documentElement.clientWidth + 1,
      rowsInfo: (d.getElementById('rows-info')?.textContent ?? '').trim(),
      // The Requests card, read with the note (both come with the same message).
      requests: Number((d.querySelector('#totals-cards .card dd')?.firstChild?.textContent ?? '').replace(/,/g, '')),
      models: Array.from(d.querySelectorAll('#filter-model option') as any[]).map((o) => o.value),
      pageScrollsSideways: d.documentElement.scrollWidth > d.documentElement.clientWidth + 1,
      scrollY: Math.round((globalThis as any).scrollY),
    };
  });
}

async function setWidth(page: Page, frame: Frame, width: number): Promise<void> {
  await page.setViewportSize({ width, height: 900 });
  await waitFor(`the webview at ${width} px`, async () => {
    const w = await frame.evaluate(() => (globalThis as any).document.documentElement.clientWidth);
    return w <= width && w > width - 120;
  });
}

export async function run({ step, helpers, page, codeServer, artifactsDir, log }: E2eContext): Promise<void> {
  const total = CURRENT_ENTRIES + 3 * OLD_ENTRIES;
  let frame: Frame;
  let theme: keyof typeof THEMES = 'light';

  const shoot = async (state: 'partial' | 'complete'): Promise<void> => {
    for (const width of theme === 'light' ? WIDTHS : [...WIDTHS].reverse()) {
      await setWidth(page, frame, width);
      const v = await countingView(frame);
      log(`${state} ${theme} ${width}px: note "${v.note}", rows "${v.rowsInfo}"`);
      assert.strictEqual(!!v.note, state === 'partial', `the note ${state === 'partial' ? 'shows' : 'is gone'}: ${JSON.stringify(v)}`);
      assert.ok(v.noteFits && !v.pageScrollsSideways, `fits ${width} px: ${JSON.stringify(v)}`);
      await frame.evaluate(() => (globalThis as any).scrollTo(0, 0));
      await page
        .locator('iframe.webview.ready')
        .first()
        .screenshot({ path: path.join(artifactsDir, `e2e-historyCounting-${state}-${theme}-${width}.png`), timeout: 15_000 });
    }
  };
  const toggleTheme = async (): Promise<void> => {
    theme = theme === 'light' ? 'dark' : 'light';
    await helpers.runCommand('Preferences: Toggle between Light/Dark Themes');
    frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
    await waitFor(`the ${theme} theme in the webview`, () =>
      frame.evaluate((cls) => (globalThis as any).document.body.classList.contains(cls), `vscode-${theme}`),
    );
  };

  await step('an upgraded data directory: three old-format months without an index and a busy current month', async () => {
    await helpers.statusBarText(/Poe/, { timeout: 60_000 });
    await dismissWalkthrough(page);
    const dir = globalStorageDir(codeServer.userDataDir);
    writeLedger(dir);
    log(`ledger written to ${dir}`);
  });

  await step('the history opens at once with the current month and says older months are being counted', async () => {
    frame = await showHistoryAlone(helpers);
    const v = await waitFor('the counting note', async () => {
      const c = await countingView(frame);
      return c.note && (await historyRows(frame)).length > 0 && c;
    });
    // Three months left at first (a slow machine may already see the first of them counted).
    const left = /^Counting older months… \(([1-3]) of 3 left\) — totals will update$/.exec(v.note);
    assert.ok(left, v.note);
    assert.strictEqual(v.requests, CURRENT_ENTRIES + (3 - Number(left[1])) * OLD_ENTRIES, 'the counted months only');
    assert.match(v.rowsInfo, /^Showing the latest 2,000 of [\d,]+\+ requests$/);
    if (left[1] === '3') assert.ok(!v.models.includes(OLD_ONLY_MODEL), 'models of months not counted yet are not listed yet');
    assert.strictEqual((await historyRows(frame)).length, 2000);
  });

  await step('partial state at both widths, light theme; screenshots', () => shoot('partial'));
  await step('dark theme', toggleTheme);
  await step('partial state at both widths, dark theme; screenshots', () => shoot('partial'));

  await step(
    'the totals fill in by themselves; the rows and the scroll position stay',
    async () => {
      // A mark on a row: a reload of the rows would replace it.
      await frame.evaluate(() => {
        (globalThis as any).scrollTo(0, 400);
        (globalThis as any).document.querySelector('#history-table tbody tr.entry').dataset.e2eMark = 'kept';
      });
      const before = await countingView(frame);
      const done = await waitFor(
        'every month counted',
        async () => {
          const c = await countingView(frame);
          return !c.note && c;
        },
        4 * PAUSE_MS + 30_000,
      );
      assert.strictEqual((await totalsCards(frame)).Requests, grouped(total));
      assert.strictEqual(done.rowsInfo, `Showing the latest ${grouped(2000)} of ${grouped(total)} requests`);
      assert.ok(done.models.includes(OLD_ONLY_MODEL), 'the older months’ models are listed');
      assert.strictEqual((await historyRows(frame)).length, 2000);
      assert.ok(await frame.evaluate(() => !!(globalThis as any).document.querySelector('tr.entry[data-e2e-mark="kept"]')), 'the rows were not reloaded');
      // (Give or take the note's own height, by which the browser may keep the content in place.)
      assert.ok(Math.abs(done.scrollY - before.scrollY) <= 60 && done.scrollY > 0, `the scroll position stayed: ${before.scrollY} → ${done.scrollY}`);
    },
    { timeout: 4 * PAUSE_MS + 60_000 },
  );

  await step('complete state at both widths, dark theme; screenshots', () => shoot('complete'));
  await step('light theme', toggleTheme);
  await step('complete state at both widths, light theme; screenshots', () => shoot('complete'));
}

export const timeoutMs = 360_000;
