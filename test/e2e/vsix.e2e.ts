// The packaged extension: `npm run package` builds the .vsix (production bundle, no dependencies),
// which must hold the bundle only; code-server installs it with --install-extension into a fresh
// profile, and the installed copy (not this folder) activates: status bar item, /health on the
// configured port, a request through the proxy and the history webview from the packaged dist/webview/ and media/.
import * as assert from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import type { E2eContext, E2ePrepare } from './harness';
import { COL, dismissWalkthrough, freePort, getJson, grouped, historyRows, isHistoryReady, typeApiKey, waitFor, zipEntryNames } from './support';

// out*/test/e2e -> repository root
const ROOT = path.resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; publisher: string; version: string };
const EXTENSION_DIR = `${manifest.publisher}.${manifest.name}-${manifest.version}`;

/** Everything the .vsix may hold: vsce's own two files plus the bundle (see .vscodeignore). */
const EXPECTED_ENTRIES = [
  '[Content_Types].xml',
  'extension.vsixmanifest',
  'extension/LICENSE.txt',
  'extension/changelog.md',
  'extension/dist/extension.js',
  'extension/dist/extension.js.map',
  'extension/dist/webview/history.js',
  'extension/dist/tokenWorker.js',
  'extension/media/history-dark.svg',
  'extension/media/history-light.svg',
  'extension/media/history.css',
  'extension/media/icon.png',
  'extension/media/screenshots/history.png',
  'extension/media/screenshots/statusbar-offline.png',
  'extension/media/screenshots/statusbar.png',
  'extension/media/walkthrough/openHistory.md',
  'extension/media/walkthrough/pointTool.md',
  'extension/media/walkthrough/sendRequest.md',
  'extension/media/walkthrough/setKey.md',
  'extension/models.yaml',
  'extension/package.json',
  'extension/readme.md',
].sort();

let fake: FakePoe;
let proxyPort: number;
let tmp: string;
let vsixFile: string;
let packageLog = '';

function npm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  // Under `npm test` npm tells us which CLI runs it; otherwise the one on PATH.
  const cli = process.env.npm_execpath;
  const [cmd, pre] = cli && cli.endsWith('.js') ? [process.execPath, [cli]] : ['npm', []];
  return promisify(execFile)(cmd, [...pre, ...args], { cwd: ROOT, timeout: 120_000, maxBuffer: 8 << 20, env: { ...process.env, npm_config_yes: 'true' } });
}

export async function prepare(): Promise<E2ePrepare> {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-vsix-'));
  vsixFile = path.join(tmp, `${manifest.name}-${manifest.version}.vsix`);
  const t0 = Date.now();
  const r = await npm(['run', 'package', '--', '--out', vsixFile]);
  packageLog = `npm run package: ${Date.now() - t0} ms\n${r.stdout}${r.stderr}`;
  fake = await FakePoe.start({ balance: 2_500_000 });
  proxyPort = await freePort();
  return {
    vsix: vsixFile,
    settings: { 'poeProxy.baseURL': fake.url, 'poeProxy.port': proxyPort },
    cleanup: async () => {
      await fake?.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export async function run({ step, helpers, page, codeServer, log }: E2eContext): Promise<void> {
  log(packageLog.split('\n')[0]);

  await step('npm run package built a .vsix holding the bundle only', () => {
    assert.match(packageLog, /esbuild: \d+ bundles .*\(production\)/, 'vscode:prepublish ran the production build');
    const names = zipEntryNames(readFileSync(vsixFile)).sort();
    assert.deepStrictEqual(names, EXPECTED_ENTRIES);
    log(`vsix: ${(readFileSync(vsixFile).length / 1024 / 1024).toFixed(2)} MB, ${names.length} entries`);
  });

  await step('code-server --install-extension put it in the profile', () => {
    const installed = readdirSync(codeServer.extensionsDir);
    assert.ok(installed.includes(EXTENSION_DIR), `extensions dir holds ${JSON.stringify(installed)}`);
    const dir = path.join(codeServer.extensionsDir, EXTENSION_DIR);
    for (const f of ['dist/extension.js', 'dist/tokenWorker.js', 'dist/webview/history.js', 'media/history.css', 'models.yaml'])
      assert.ok(existsSync(path.join(dir, f)), f);
    assert.ok(!existsSync(path.join(dir, 'src')) && !existsSync(path.join(dir, 'node_modules')), 'no sources or node_modules');
    // The extension page shows the user README (MARKETPLACE.md), not the contributors' one.
    assert.strictEqual(readFileSync(path.join(dir, 'readme.md'), 'utf8'), readFileSync(path.join(ROOT, 'MARKETPLACE.md'), 'utf8'));
  });

  await step('the installed copy activates: status bar item', async () => {
    assert.ok(!(await page.title()).includes('Extension Development Host'), 'not the development folder');
    await helpers.statusBarText(/Poe: set key/, { timeout: 60_000 });
  });

  await step('the installed copy opens its walkthrough on the first start', () => dismissWalkthrough(page));

  await step('the proxy answers /health on the configured port', async () => {
    const health = await waitFor('/health', () => getJson(proxyPort, '/health').catch(() => undefined));
    assert.strictEqual(health.status, 200);
    assert.strictEqual(health.body.name, 'poe-proxy');
    assert.strictEqual(health.body.version, manifest.version);
    assert.strictEqual(health.body.port, proxyPort);
  });

  await step('with a key set from the palette, a request goes through the packaged proxy', async () => {
    await helpers.runCommand('Poe: Set API Key');
    await typeApiKey(page, DEFAULT_API_KEY);
    await helpers.statusBarText(/Poe 2\.5M/);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${proxyPort}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
    const c = await client.chat.completions.create({ model: 'GPT-5', messages: [{ role: 'user', content: 'Hello from the packaged build.' }] });
    assert.ok(c.usage && c.usage.completion_tokens > 0);
  });

  await step('the history webview loads its script (dist/webview/) and style (media/) from the package', async () => {
    await helpers.runCommand('Poe: Show Cost History');
    const frame = await helpers.findWebviewFrame(isHistoryReady, { timeout: 30_000 });
    const rows = await waitFor('the GPT-5 row', async () => {
      const r = await historyRows(frame);
      return r.length > 0 && r;
    });
    assert.deepStrictEqual(
      rows.map((r) => r.model),
      ['GPT-5'],
    );
    assert.strictEqual(rows[0].cells[COL.status], 'ok');
    if (rows[0].cells[COL.kind] === 'actual') assert.strictEqual(rows[0].cells[COL.balanceAfter], grouped(fake.balance));
    else assert.match(rows[0].cells[COL.balanceAfter], /^2,49\d,\d{3}$/);
    // The stylesheet applied: the toolbar is a flex row (history.css), not the browser default.
    assert.strictEqual(await frame.$eval('.toolbar', (e) => (globalThis as any).getComputedStyle(e).display), 'flex');
    await helpers.screenshot('history');
  });
}
