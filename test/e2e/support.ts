// Small helpers shared by the e2e modules (not a module itself: the runner only loads *.e2e.js).
// Callbacks given to frame.evaluate/$$eval run in the webview, not in Node: they reach the DOM
// through `globalThis as any` because the test program is compiled without the DOM lib.
import * as http from 'node:http';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import type { E2eHelpers } from './harness';
import { freePort, waitFor as waitForEvery } from '../support/wait';

export { freePort };

/** package.json's publisher.name. */
export const EXTENSION_ID = 'poe-proxy.poe-proxy-vscode';

/** The extension's data directory (its globalStorageUri: ledger, config) in a code-server user data directory. */
export function globalStorageDir(userDataDir: string): string {
  return path.join(userDataDir, 'User', 'globalStorage', EXTENSION_ID);
}

/** waitFor with the workbench's slower pace: 20 s, polling every 200 ms. */
export function waitFor<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  return waitForEvery(what, probe, timeoutMs, 200);
}

/** GET http://127.0.0.1:port/path as JSON (no keep-alive, 5 s bound). */
export function getJson(port: number, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new Error(`GET ${path}: not JSON (${res.statusCode}): ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} timed out`)));
  });
}

/** One row of the history table, as the user sees it. */
export interface HistoryRow {
  model: string;
  status: string;
  cells: string[];
}

/** The cost-history webview's frame: the one holding `#history-table` (title check keeps it specific). */
export function isHistoryFrame(f: Frame): Promise<boolean> {
  return f.evaluate(() => !!(globalThis as any).document.getElementById('history-table') && (globalThis as any).document.title === 'Poe Cost History');
}

/**
 * The history frame once its script ran: the skeleton (and its table) shows while dist/webview/history.js
 * still loads; the script's first render always puts a row (data or placeholder) in the table body,
 * after restoring the saved filter and sort into the controls.
 */
export async function isHistoryReady(f: Frame): Promise<boolean> {
  return (
    (await isHistoryFrame(f)) &&
    (await f.evaluate(() => (globalThis as any).document.querySelectorAll('#history-table tbody tr').length > 0)) &&
    (await f.isVisible('#history-table'))
  );
}

/**
 * Runs "Poe: Show Cost History" and returns its webview once ready, with the panel given the window's
 * width (the side bar closed) and no toast covering it in screenshots.
 */
export async function showHistoryAlone(helpers: E2eHelpers): Promise<Frame> {
  await helpers.runCommand('Poe: Show Cost History');
  const frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
  await helpers.runCommand('View: Close Primary Side Bar').catch(() => undefined);
  await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
  return frame;
}

/** Entry rows of the history table, in display order. */
export function historyRows(frame: Frame): Promise<HistoryRow[]> {
  return frame.$$eval('#history-table tbody tr.entry', (trs) =>
    trs.map((tr) => ({
      model: (tr as any).dataset.model ?? '',
      status: (tr as any).dataset.status ?? '',
      cells: Array.from((tr as any).children as any[]).map((c) => (c.textContent ?? '').trim()),
    })),
  );
}

/** Column indexes of `HistoryRow.cells` (see src/vscode/historyHtml.ts). */
export const COL = { time: 0, model: 1, tokensIn: 2, tokensOut: 3, points: 4, kind: 5, balanceAfter: 6, status: 7, duration: 8 } as const;

/** The Requests/Points/… cards of the Totals section: label -> text. */
export function totalsCards(frame: Frame): Promise<Record<string, string>> {
  return frame.$$eval('#totals-cards .card', (cards) =>
    Object.fromEntries(cards.map((c) => [(c.querySelector('dt')?.textContent ?? '').trim(), (c.querySelector('dd')?.firstChild?.textContent ?? '').trim()])),
  );
}

/** Grouped like the webview prints numbers (en-US, no fraction for integers). */
export function grouped(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** Clicks the editor tab titled `title` (brings a hidden webview panel back). */
export async function clickTab(page: Page, title: string): Promise<void> {
  await page.locator('.tabs-container .tab', { hasText: title }).first().click({ timeout: 10_000 });
}

/**
 * Names of the entries of a zip file (a .vsix), read from its central directory. Enough for
 * checking what a package holds without an unzip tool or a zip dependency (no zip64, no comment
 * longer than 64 KiB — vsce writes neither).
 */
export function zipEntryNames(zip: Buffer): string[] {
  const EOCD = 0x06054b50;
  const CDH = 0x02014b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file: no end of central directory record');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== CDH) throw new Error(`zip: bad central directory header at ${at}`);
    const nameLen = zip.readUInt16LE(at + 28);
    const extraLen = zip.readUInt16LE(at + 30);
    const commentLen = zip.readUInt16LE(at + 32);
    names.push(zip.toString('utf8', at + 46, at + 46 + nameLen));
    at += 46 + nameLen + extraLen + commentLen;
  }
  return names;
}

/**
 * A fresh profile opens the walkthrough by itself, and once more ~3 s later while its tab is still the
 * active one (see Ctx.openWalkthroughOnce); that can take the command palette's focus. Modules that are
 * not about onboarding wait for it and close its tab first (after which it never reopens).
 */
export async function dismissWalkthrough(page: Page): Promise<void> {
  await page.getByText('Get started with Poe Proxy').first().waitFor({ state: 'visible', timeout: 60_000 });
  const tab = page.locator('.tabs-container .tab', { hasText: 'Welcome' }).first();
  await tab.hover();
  await tab.locator('.tab-actions .action-label').first().click({ timeout: 10_000 });
  await tab.waitFor({ state: 'detached', timeout: 10_000 });
}

/** Types `key` into the Set API Key password box (once it is open) and presses Enter; returns the box. */
export async function typeApiKey(page: Page, key: string): Promise<ReturnType<Page['locator']>> {
  const box = page.locator('.quick-input-widget .quick-input-box input[type="password"]');
  await box.waitFor({ state: 'visible', timeout: 15_000 });
  await box.pressSequentially(key);
  await page.keyboard.press('Enter');
  return box;
}
