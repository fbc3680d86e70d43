// After "Use Another Port", the clients a Configure command pointed at the old port would stop working:
// the extension offers to update them (its backups say which), and "Update Clients" re-points them with
// the same diff and Write/Discard as configuring. Driven from the palette and the notifications, with
// code-server's HOME in a temp dir so Codex's ~/.codex/config.toml is a throwaway file.
// Screenshot: test-results/e2e-clientPort-offer.png (the offer).
import * as assert from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, getJson, waitFor } from './support';

let fake: FakePoe;
let oldPort: number;
let home: string;

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start();
  oldPort = await freePort();
  home = mkdtempSync(path.join(os.tmpdir(), 'poe-e2e-home-'));
  return {
    settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': oldPort },
    env: { HOME: home },
    cleanup: async () => {
      await fake.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function codexConfig(): string {
  try {
    return readFileSync(path.join(home, '.codex', 'config.toml'), 'utf8');
  } catch {
    return '';
  }
}

/** The notification toast holding `text`, once it shows. */
async function toast(page: Page, text: string | RegExp) {
  const t = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await t.waitFor({ state: 'visible', timeout: 20_000 });
  return t;
}

export async function run({ step, helpers, page, log }: E2eContext): Promise<void> {
  await step('the proxy serves the configured port', async () => {
    await helpers.statusBarText(/Poe/, { timeout: 60_000 });
    await dismissWalkthrough(page);
    await waitFor('the proxy on the old port', async () => (await getJson(oldPort, '/health').catch(() => ({ status: 0 }))).status === 200);
  });

  await step('"Configure Codex" from the palette writes ~/.codex/config.toml for that port (Write in the notification)', async () => {
    await helpers.runCommand('Poe: Configure Codex');
    // The model picker: take the first (a tool-calling model).
    await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').first().waitFor({ state: 'visible', timeout: 15_000 });
    await page.keyboard.press('Enter');
    const ask = await toast(page, 'Configure Codex to use the Poe proxy');
    await ask.getByRole('button', { name: 'Write' }).click();
    await waitFor('the Codex config', () => codexConfig().includes(`http://127.0.0.1:${oldPort}/v1`));
  });

  const newPort = await freePort();
  await step('"Use Another Port" offers to update Codex, which was configured for the old port', async () => {
    await helpers.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
    await helpers.runCommand('Poe: Use Another Port');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(String(newPort));
    await page.keyboard.press('Enter');
    const offer = await toast(page, `Codex was configured for port ${oldPort}. Update to ${newPort}?`);
    assert.deepStrictEqual(await offer.locator('.notification-list-item-buttons-container .monaco-button').allTextContents(), ['Update Clients']);
    await helpers.screenshot('offer');
    await offer.getByRole('button', { name: 'Update Clients' }).click();
  });

  await step('"Update Clients" shows the change and, on Write, points Codex at the new port', async () => {
    const ask = await toast(page, `http://127.0.0.1:${oldPort} becomes http://127.0.0.1:${newPort}`);
    await ask.getByRole('button', { name: 'Write' }).click();
    await waitFor('Codex on the new port', () => codexConfig().includes(`http://127.0.0.1:${newPort}/v1`));
    assert.ok(!codexConfig().includes(`:${oldPort}`), codexConfig());
    await waitFor('the proxy on the new port', async () => (await getJson(newPort, '/health').catch(() => ({ status: 0 }))).status === 200);
    log(`Codex: ${codexConfig().match(/base_url\s*=.*$/m)?.[0] ?? '(no base_url line)'}`);
  });
}
