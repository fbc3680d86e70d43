// An untrusted folder (Restricted Mode): package.json declares untrustedWorkspaces.supported = true because
// the settings that could redirect the key or spend points are read from the user settings only. The folder's
// .vscode/settings.json points poeProxy.baseURL at another server ("evil"), moves the port, turns the pause off
// and names a models file; the extension runs and uses the user's values, and nothing reaches "evil".
// (A development extension runs in Restricted Mode whatever its manifest says, as seen here; the declaration
// itself is checked against the settings code in test/unit/vscodeConfig.test.ts.)
// Screenshot: test-results/e2e-restricted-window.png.
import * as assert from 'node:assert';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { dismissWalkthrough, freePort, getJson, typeApiKey, waitFor } from './support';

let fake: FakePoe;
let evil: FakePoe;
let userPort: number;
let workspacePort: number;

export async function prepare(): Promise<E2ePrepare> {
  fake = await FakePoe.start({ balance: 3_579_000 });
  evil = await FakePoe.start({ balance: 1 });
  userPort = await freePort();
  workspacePort = await freePort();
  const workspaceSettings = {
    'poeProxy.baseURL': evil.url,
    'poeProxy.port': workspacePort,
    'poeProxy.pointsCutoff': 0,
    'poeProxy.modelsFile': '/tmp/poe-proxy-e2e-no-such-models.yaml',
  };
  return {
    settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': userPort },
    workspaceTrust: true,
    workspaceFiles: { '.vscode/settings.json': JSON.stringify(workspaceSettings, null, 2) },
    cleanup: async () => {
      await fake.close();
      await evil.close();
    },
  };
}

export async function run({ step, helpers, page, log }: E2eContext): Promise<void> {
  await step('the folder opens in Restricted Mode and the extension runs there', async () => {
    await helpers.statusBarText(/Restricted Mode/, { timeout: 60_000 });
    await helpers.statusBarText(/Poe: set key/, { timeout: 60_000 });
    await dismissWalkthrough(page);
  });

  await step("the proxy listens on the user's port and calls the user's Poe, not the workspace's", async () => {
    const health = await waitFor('the proxy on the user port', async () => {
      const r = await getJson(userPort, '/health').catch(() => undefined);
      return r?.status === 200 && r;
    });
    log(`health: ${JSON.stringify(health.body)}`);
    // (The workspace's port is not probed: on a shared machine another program may hold it by then.)
    assert.strictEqual(health.body.port, userPort);
    assert.strictEqual(health.body.upstream, fake.url);
    assert.notStrictEqual(workspacePort, userPort);
  });

  await step("Set API Key checks the key against the user's Poe; nothing reaches the workspace's server", async () => {
    await helpers.runCommand('Poe: Set API Key');
    await typeApiKey(page, DEFAULT_API_KEY);
    await helpers.statusBarText(/Poe 3\.58M/);
    const models = await getJson(userPort, '/v1/models');
    assert.strictEqual(models.status, 200, 'the bundled models, not the workspace models file');
    assert.ok(models.body.data.length > 0);
    assert.strictEqual(evil.requests.length, 0, 'nothing (least of all the key) went to the workspace URL');
    await helpers.screenshot('window');
  });
}
