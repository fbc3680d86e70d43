// The Settings editor as a user sees the extension's settings, and the rename of poeProxy.baseUrl to
// poeProxy.baseURL (VS Code derives the title from the key: "Base URL", was "Base Url"). The profile starts
// with the old key in the user settings, as an earlier version left it: the extension moves the value to the
// new key and uses it. Screenshot: test-results/e2e-settings-base-url.png.
import * as assert from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, typeApiKey, waitFor } from './support';

let fake: FakePoe;

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: 2_468_000 });
  // The old key only: an upgrade from a version before the rename.
  return { settings: { 'poeProxy.baseUrl': fake.url, 'poeProxy.port': await freePort() }, cleanup: () => fake.close() };
}

export async function run({ step, helpers, page, codeServer, log }: E2eContext): Promise<void> {
  const settingsFile = path.join(codeServer.userDataDir, 'User', 'settings.json');
  const userSettings = () => JSON.parse(readFileSync(settingsFile, 'utf8')) as Record<string, unknown>;

  await step('at start-up, the value of poeProxy.baseUrl moves to poeProxy.baseURL in the user settings', async () => {
    await helpers.statusBarText(/Poe/, { timeout: 60_000 });
    const moved = await waitFor('the user settings rewritten', () => {
      const s = userSettings();
      return s['poeProxy.baseURL'] === fake.url && !('poeProxy.baseUrl' in s) && s;
    });
    log(`user settings: ${JSON.stringify(moved)}`);
  });

  await step('the moved value is the one in use: Set API Key checks the key against that Poe', async () => {
    await dismissWalkthrough(page);
    await helpers.runCommand('Poe: Set API Key');
    await typeApiKey(page, DEFAULT_API_KEY);
    await helpers.statusBarText(/Poe 2\.47M/);
  });

  await step('the Settings editor titles it "Base URL", with the moved value', async () => {
    await helpers.runCommand('Preferences: Open User Settings');
    await page.locator('.settings-editor').waitFor({ state: 'visible', timeout: 20_000 });
    await page.keyboard.type('poeProxy.base');
    const item = page.locator('.settings-editor .setting-item-contents', { hasText: 'Base URL' }).first();
    await item.waitFor({ state: 'visible', timeout: 20_000 });
    const titles = await page.locator('.settings-editor .setting-item-contents .setting-item-title').allTextContents();
    log(`titles: ${JSON.stringify(titles)}`);
    assert.ok(
      titles.some((t) => /^Poe Proxy: Base URL/.test(t)),
      JSON.stringify(titles),
    );
    assert.ok(!titles.some((t) => /Base Url/.test(t)), 'no setting titled "Base Url" is left');
    assert.strictEqual(await item.locator('input').first().inputValue(), fake.url);
    await helpers.screenshot('base-url');
  });
}
