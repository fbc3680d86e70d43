// Exporting a large cost history (#14): 400,000 requests in two closed months (compressed by the
// extension when the history first opens). "Export CSV" asks for a file in the save dialog, then a
// cancellable progress notification counts the rows written ("N of 400,000 requests") while the CSV
// streams to the file; the webview and an information message report the result. A second export,
// cancelled from the notification, leaves neither the file nor its `.part` behind.
// Screenshots: test-results/e2e-historyExport-{progress,exported,cancel-progress,cancelled}.png.
import * as assert from 'node:assert';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { Frame, Page } from 'playwright-core';
import { CSV_COLUMNS } from '../../src/core/store/ledger';
import { addMonths, monthOf } from '../../src/core/store/ledgerFiles';
import { writeLedgerMonths } from '../support/ledgerFixtures';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, globalStorageDir, grouped, isHistoryReady, totalsCards, waitFor } from './support';

const PER_MONTH = 200_000;
const TOTAL = 2 * PER_MONTH;
/** The export runs for seconds: its waits are generous (a loaded 2-core machine), never upper bounds on its speed. */
const EXPORT_WAIT_MS = 240_000;

let exportDir: string;

export const timeoutMs = 600_000;

export async function prepare(): Promise<E2ePrepare> {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'e2e-historyExport-user-'));
  const dataDir = globalStorageDir(userDataDir);
  mkdirSync(dataDir, { recursive: true });
  const current = monthOf(new Date());
  writeLedgerMonths(dataDir, [addMonths(current, -2), addMonths(current, -1)], PER_MONTH);
  exportDir = mkdtempSync(path.join(os.tmpdir(), 'e2e-historyExport-out-'));
  return {
    userDataDir,
    // No key is set: nothing reaches Poe; the proxy gets a port of its own.
    settings: { 'poeProxy.port': await freePort() },
    cleanup: () => rmSync(exportDir, { recursive: true, force: true }),
  };
}

/** The notification toast whose text contains `text`. */
function toast(page: Page, text: string) {
  return page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
}

/** A toast's message as shown (its text content also holds a style sheet). */
async function toastMessage(t: ReturnType<typeof toast>): Promise<string> {
  const text = await t.locator('.notification-list-item-message').textContent({ timeout: 1000 });
  return (text ?? '').replace(/\s+/g, ' ').trim();
}

const PROGRESS_TITLE = 'Poe: exporting the cost history to';

/** The export's status line in the webview. */
async function exportStatus(frame: Frame): Promise<string> {
  return ((await frame.textContent('#export-status')) ?? '').trim();
}

/** Clicks Export CSV and answers code-server's save dialog (a quick input holding a path) with `file`. */
async function startExport(page: Page, frame: Frame, file: string): Promise<void> {
  await frame.click('#export-csv');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  // The dialog fills its value in steps (folder first); replace it once it proposed the file name.
  await waitFor('the proposed file name', async () => /\/poe-cost-history-[\w.-]+\.csv$/.test(await input.inputValue()));
  await input.fill(file);
  // The dialog lists the typed folder (busy meanwhile) and ignores Enter until then: press it again
  // until the dialog takes the path and closes.
  const busy = page.locator('.quick-input-widget .monaco-progress-container.active');
  await waitFor('the dialog to take the typed path', async () => {
    if ((await input.inputValue()) !== file || (await busy.count()) > 0) return false;
    await page.keyboard.press('Enter');
    return input.waitFor({ state: 'hidden', timeout: 3000 }).then(
      () => true,
      () => false,
    );
  });
}

/** Waits for the export's progress notification to count rows against the total; returns its text. */
async function progressShown(page: Page, name: string): Promise<string> {
  const progress = toast(page, `${PROGRESS_TITLE} ${name}`);
  return waitFor(
    'the progress notification counting rows',
    async () => {
      const text = await toastMessage(progress).catch(() => '');
      return new RegExp(`^${PROGRESS_TITLE} ${name.replace(/\./g, '\\.')}: [\\d,]+ of ${grouped(TOTAL)} requests$`).test(text) && text;
    },
    EXPORT_WAIT_MS,
  );
}

/** Lines of a CSV file (CRLF) read as a stream: the header, the first and last rows and the row count. */
async function readCsv(file: string): Promise<{ header: string; first: string; last: string; rows: number }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let header = '';
  let first = '';
  let last = '';
  let rows = 0;
  for await (const line of lines) {
    if (!header) header = line;
    else if (line) {
      if (!first) first = line;
      last = line;
      rows++;
    }
  }
  return { header, first, last, rows };
}

export async function run({ step, helpers, page, log }: E2eContext): Promise<void> {
  await step('the workbench is up; the walkthrough is closed for this module', async () => {
    await helpers.statusBarText(/Poe/, { timeout: 60_000 });
    await dismissWalkthrough(page);
  });

  const frame = await step(
    `the Cost History opens on ${grouped(TOTAL)} requests in two closed months`,
    async () => {
      const t0 = Date.now();
      await helpers.runCommand('Poe: Show Cost History');
      const f = await helpers.findWebviewFrame(isHistoryReady, { timeout: 60_000 });
      await helpers.runCommand('View: Close Primary Side Bar').catch(() => undefined);
      // The first open compresses the two closed months (readers wait for it), then indexes them.
      await waitFor('the totals of every request', async () => (await totalsCards(f)).Requests === grouped(TOTAL), EXPORT_WAIT_MS);
      log(`history open with ${grouped(TOTAL)} requests after ${Date.now() - t0} ms`);
      await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
      return f;
    },
    { timeout: EXPORT_WAIT_MS + 60_000 },
  );

  const file = path.join(exportDir, 'poe-history-all.csv');
  await step(
    'Export CSV: a progress notification counts the rows against the total while the CSV streams to the file',
    async () => {
      const t0 = Date.now();
      await startExport(page, frame, file);
      const text = await progressShown(page, path.basename(file));
      log(`progress: "${text}"`);
      assert.strictEqual(await exportStatus(frame), 'Exporting…');
      assert.ok(await frame.isDisabled('#export-csv'), 'one export at a time: the button waits for the result');
      await helpers.screenshot('progress');
      const status = await waitFor(
        'the export result in the webview',
        async () => {
          const s = await exportStatus(frame);
          return s !== 'Exporting…' && s;
        },
        EXPORT_WAIT_MS,
      );
      log(`export done after ${Date.now() - t0} ms`);
      assert.strictEqual(status, `Exported ${grouped(TOTAL)} requests.`, 'short: the toolbar stays on one row');
      assert.strictEqual(await frame.getAttribute('#export-status', 'title'), `Exported ${grouped(TOTAL)} requests to ${file}.`, 'the whole path on hover');
      assert.ok(await frame.isEnabled('#export-csv'));
      const done = toast(page, 'Poe: exported');
      await done.waitFor({ state: 'visible', timeout: 30_000 });
      assert.strictEqual(await toastMessage(done), `Poe: exported ${grouped(TOTAL)} requests to poe-history-all.csv.`);
      const buttons = await done.locator('.notification-list-item-buttons-container .monaco-button').allTextContents();
      assert.deepStrictEqual(
        buttons.map((b) => b.trim()),
        ['Open', 'Reveal in File Manager'],
        'outside the workspace: the file manager',
      );
      await toast(page, PROGRESS_TITLE).waitFor({ state: 'hidden', timeout: 30_000 });
      // Screenshot once the toast has faded in.
      await page.locator('.notification-toast.notification-fade-in-done', { hasText: 'Poe: exported' }).waitFor({ timeout: 10_000 });
      await helpers.screenshot('exported');
    },
    { timeout: 2 * EXPORT_WAIT_MS },
  );

  await step('the file holds the header and every request, oldest first; no part file is left', async () => {
    assert.deepStrictEqual(readdirSync(exportDir), [path.basename(file)]);
    const csv = await readCsv(file);
    assert.strictEqual(csv.header, CSV_COLUMNS.join(','));
    assert.strictEqual(csv.rows, TOTAL);
    const idOf = (row: string) => row.split(',')[CSV_COLUMNS.indexOf('id')];
    assert.strictEqual(idOf(csv.first), `chatcmpl-${(0).toString(36).padStart(10, '0')}`);
    assert.strictEqual(idOf(csv.last), `chatcmpl-${(TOTAL - 1).toString(36).padStart(10, '0')}`);
  });

  const cancelled = path.join(exportDir, 'poe-history-cancelled.csv');
  await step(
    'a second export cancelled from its notification leaves neither the file nor a part file',
    async () => {
      await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
      await startExport(page, frame, cancelled);
      await progressShown(page, path.basename(cancelled));
      await helpers.screenshot('cancel-progress');
      await toast(page, PROGRESS_TITLE).locator('.notification-list-item-buttons-container .monaco-button', { hasText: 'Cancel' }).click({ timeout: 10_000 });
      await waitFor('the cancelled export in the webview', async () => (await exportStatus(frame)) === 'Export cancelled.', EXPORT_WAIT_MS);
      assert.ok(await frame.isEnabled('#export-csv'));
      await toast(page, PROGRESS_TITLE).waitFor({ state: 'hidden', timeout: 30_000 });
      assert.strictEqual(await toast(page, 'Poe: exported').count(), 0, 'no "exported" message');
      assert.ok(!existsSync(cancelled), 'no file under the chosen name');
      assert.deepStrictEqual(readdirSync(exportDir), [path.basename(file)], 'no part file left');
      await helpers.screenshot('cancelled');
    },
    { timeout: 2 * EXPORT_WAIT_MS },
  );
}
