// The extension inside a real VS Code extension host (code-server): activation, commands, the key in
// real SecretStorage, the proxy reachable over real HTTP in front of a FakePoe, live settings, several
// windows sharing one port, model picks, the access key and a graceful stop.
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as http from 'http';
import * as path from 'path';
import * as vscode from 'vscode';
import type { PoeProxyApi } from '../../src/vscode/extension';
import { freePort, waitFor } from '../support/wait';
import { defaultReply } from '../support/fake/reply';
import { DEFAULT_API_KEY, DEFAULT_MODELS, FakePoe } from '../support/fake/server';

const EXTENSION_ID = 'poe-proxy.poe-proxy-vscode';
const LIVE_ONLY = 'Fake-Live-Only-Bot';

// ---- helpers ----------------------------------------------------------------------------------

function section(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('poeProxy');
}

async function setGlobal(key: string, value: unknown): Promise<void> {
  await section().update(key, value, vscode.ConfigurationTarget.Global);
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): any;
}

function request(port: number, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        agent: false,
        headers: { ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error('request timed out')));
    req.end(data);
  });
}

function chat(port: number, content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Reply> {
  return request(port, 'POST', '/v1/chat/completions', { model: 'GPT-4.1', messages: [{ role: 'user', content }], ...extra }, headers);
}

/** A stand-in for something else on a port: answers every request with `status` and `body`. */
function fakeListener(port: number, status: number, body: unknown): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const s = http.createServer((_req, res) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' });
      res.end(text);
    });
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

function closeServer(s: http.Server): Promise<void> {
  return new Promise((r) => {
    s.close(() => r());
    s.closeAllConnections();
  });
}

function isRefused(port: number): Promise<boolean> {
  return request(port, 'GET', '/health').then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
  );
}

// ---- the suite --------------------------------------------------------------------------------

describe('Poe Proxy extension in the real VS Code host', function () {
  this.timeout(60_000);
  let api: PoeProxyApi;
  let fake: FakePoe;
  let port: number;

  const running = (p = port) => waitFor(`the proxy running on port ${p}`, () => api.state().kind === 'running' && api.state().port === p && api.state());

  before(async () => {
    fake = await FakePoe.start({ models: [...DEFAULT_MODELS, LIVE_ONLY] });
    const ext = vscode.extensions.getExtension<PoeProxyApi>(EXTENSION_ID);
    assert.ok(ext, 'extension present');
    api = await ext.activate();
    await api.ready;
    // A clean slate: no key, no picks, our own port and the fake upstream (user settings).
    await api.ctx.keys.clearPoeKey();
    await api.ctx.models.reset();
    port = await freePort();
    await setGlobal('baseURL', fake.url);
    await setGlobal('port', port);
    await setGlobal('pointsCutoff', undefined);
    await setGlobal('requireAccessKey', undefined);
    await vscode.commands.executeCommand('poeProxy.start');
    await running();
  });

  after(async () => {
    await api?.ctx.models.reset().catch(() => undefined);
    await api?.ctx.controller.reloadModels().catch(() => undefined);
    for (const key of ['baseURL', 'port', 'pointsCutoff', 'requireAccessKey']) await setGlobal(key, undefined).catch(() => undefined);
    await api?.ctx.keys.clearPoeKey().catch(() => undefined);
    await fake?.close();
  });

  it('activates on startup and exports its API (how fast: npm run bench)', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    assert.strictEqual(ext.isActive, true);
    assert.deepStrictEqual(ext.packageJSON.activationEvents, ['onStartupFinished']);
    assert.ok(Number.isFinite(api.activationMs) && api.activationMs > 0, `activationMs: ${api.activationMs}`);
    assert.strictEqual(typeof api.state, 'function');
    const month = new Date().toISOString().slice(0, 7);
    assert.strictEqual(api.ctx.ledger.path, path.join(api.ctx.extension.globalStorageUri.fsPath, `ledger-${month}.jsonl`));
  });

  it('registers every contributed command, and contributes every command it registers', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const contributed: string[] = ext.packageJSON.contributes.commands.map((c: { command: string }) => c.command).sort();
    const registered = (await vscode.commands.getCommands(true)).filter((c) => c.startsWith('poeProxy.')).sort();
    assert.ok(contributed.length >= 14, `${contributed.length} commands contributed`);
    assert.deepStrictEqual(registered, contributed);
    for (const c of ext.packageJSON.contributes.commands) assert.strictEqual(c.category, 'Poe', c.command);
  });

  it('refuses a key Poe rejects (checked against the balance endpoint) and stores nothing', async () => {
    const before = fake.requests.length;
    const result = await vscode.commands.executeCommand<{ ok: boolean; message?: string }>('poeProxy.setApiKey', 'wrong-key-0123456789');
    assert.strictEqual(result.ok, false);
    assert.match(result.message ?? '', /401/);
    assert.match(result.message ?? '', /Invalid API key/, "Poe's own message is shown");
    const checks = fake.requests.slice(before).filter((r) => r.path === '/usage/current_balance');
    assert.strictEqual(checks.length, 1, 'validated against the (fake) Poe upstream');
    assert.strictEqual(checks[0].headers.authorization, 'Bearer wrong-key-0123456789');
    assert.strictEqual(await api.ctx.extension.secrets.get('poeProxy.apiKey'), undefined);
    assert.strictEqual(api.ctx.keys.poeKey, undefined);
    assert.strictEqual(api.ctx.statusBar.state, 'no-key');
    assert.match(api.ctx.statusBar.item.text, /\$\(key\) Poe/);
    assert.ok(api.ctx.statusBar.item.backgroundColor instanceof vscode.ThemeColor);
  });

  it('stores a key Poe accepts in SecretStorage (never in settings) and shows the balance', async () => {
    fake.balance = 1_234_567;
    const result = await vscode.commands.executeCommand<{ ok: boolean; balance?: number }>('poeProxy.setApiKey', DEFAULT_API_KEY);
    assert.deepStrictEqual(result, { ok: true, balance: 1_234_567 });
    assert.strictEqual(await api.ctx.extension.secrets.get('poeProxy.apiKey'), DEFAULT_API_KEY);
    assert.strictEqual(api.ctx.keys.poeKey, DEFAULT_API_KEY);
    const settingsText = JSON.stringify(vscode.workspace.getConfiguration().inspect('poeProxy'));
    assert.ok(!JSON.stringify(section()).includes(DEFAULT_API_KEY) && !(settingsText ?? '').includes(DEFAULT_API_KEY), 'key not in settings');
    await waitFor('the balance in the status bar', () => api.ctx.statusBar.item.text === '$(pulse) Poe 1.23M');
    assert.strictEqual(api.balance(), 1_234_567);
    assert.strictEqual(api.ctx.statusBar.state, 'running');
    assert.strictEqual(api.ctx.statusBar.item.backgroundColor, undefined);
    const tooltip = api.ctx.statusBar.item.tooltip as vscode.MarkdownString;
    assert.ok(tooltip.value.includes(`http://127.0.0.1:${port}/v1`), tooltip.value);
    assert.match(tooltip.value, /Cutoff: 100,000 points/);
  });

  it('serves /health and a chat completion through the proxy to Poe, and records it', async () => {
    const health = await request(port, 'GET', '/health');
    assert.strictEqual(health.status, 200);
    assert.strictEqual(health.json().name, 'poe-proxy');
    assert.strictEqual(health.json().keyConfigured, true);
    assert.strictEqual(health.json().upstream, fake.url);
    assert.strictEqual(api.baseUrl(), `http://127.0.0.1:${port}/v1`);

    const before = fake.chatRequests().length;
    const res = await chat(port, 'hello from the host test', { stream: false });
    assert.strictEqual(res.status, 200, res.text);
    assert.match(res.json().choices[0].message.content, /Echo: hello from the host test/);
    const upstream = fake.chatRequests().slice(before);
    assert.strictEqual(upstream.length, 1);
    assert.strictEqual(upstream[0].headers.authorization, `Bearer ${DEFAULT_API_KEY}`, 'the key from SecretStorage went upstream');

    const last = await waitFor('the last request in the tooltip', () => api.ctx.controller.lastRequest);
    assert.strictEqual(last.model, 'GPT-4.1');
    assert.strictEqual(last.status, 'ok');
    assert.match((api.ctx.statusBar.item.tooltip as vscode.MarkdownString).value, /Last request: GPT\\-4\\\.1/);
    await api.ctx.ledger.flush();
    const entries = await api.ctx.ledger.read({ limit: 1 });
    assert.strictEqual(entries[0]?.model, 'GPT-4.1');
    const raw = await fsp.readFile(api.ctx.ledger.path, 'utf8');
    assert.ok(!raw.includes(DEFAULT_API_KEY) && !raw.includes('hello from the host test'), 'ledger holds neither key nor prompt');
  });

  it('pauses at a used-up daily budget, notifies once, and shows the spend against it in the tooltip', async () => {
    const shown: string[] = [];
    const window = vscode.window as { showWarningMessage: (...args: unknown[]) => Thenable<unknown> };
    const original = window.showWarningMessage;
    window.showWarningMessage = (message: unknown) => {
      if (typeof message === 'string' && message.includes('budget')) shown.push(message);
      return Promise.resolve(undefined);
    };
    try {
      await chat(port, 'spend something first', { stream: false });
      await waitFor('spend counted', () => (api.ctx.controller.server?.engine.spend.spent().today ?? 0) > 0);
      await setGlobal('pointsBudgetDaily', 1);
      const before = fake.chatRequests().length;
      const first = await chat(port, 'over budget', { stream: false });
      assert.match(first.text, /daily points budget of 1 is used up/);
      await chat(port, 'still over budget', { stream: false });
      assert.strictEqual(fake.chatRequests().length, before, 'nothing was sent to Poe');
      await waitFor('one budget notification', () => shown.length === 1);
      assert.match(shown[0], /daily points budget/);
      assert.match((api.ctx.statusBar.item.tooltip as vscode.MarkdownString).value, /Spent today: [\d,]+ of 1 \(\d+%\)/);
      assert.strictEqual(shown.length, 1, 'once per budget and day');
    } finally {
      window.showWarningMessage = original;
      await setGlobal('pointsBudgetDaily', undefined);
    }
  });

  it('shows "paused" with a warning colour when the balance is below the cutoff', async () => {
    await setGlobal('pointsCutoff', 2_000_000);
    await waitFor('paused state', () => api.ctx.statusBar.state === 'paused');
    assert.match(api.ctx.statusBar.item.text, /debug-pause/);
    assert.ok(api.ctx.statusBar.item.backgroundColor instanceof vscode.ThemeColor);
    const res = await chat(port, 'while paused', { stream: false });
    assert.match(res.text, /paused/i, 'the live reconfigure reached the server');
    await setGlobal('pointsCutoff', undefined);
    await waitFor('running state again', () => api.ctx.statusBar.state === 'running');
  });

  it('follows a key change made in another window (secrets.onDidChange)', async () => {
    // Another window writes the same SecretStorage entry; this window learns it through onDidChange.
    await api.ctx.extension.secrets.store('poeProxy.apiKey', 'key-from-another-window');
    await waitFor('the new key', () => api.ctx.keys.poeKey === 'key-from-another-window');
    const res = await chat(port, 'with the other key', { stream: false });
    assert.strictEqual(res.status, 401, 'the proxy uses the changed key at once');
    await api.ctx.extension.secrets.store('poeProxy.apiKey', DEFAULT_API_KEY);
    await waitFor('the key back', () => api.ctx.keys.poeKey === DEFAULT_API_KEY);
  });

  it('Clear API Key removes it from SecretStorage and the proxy', async () => {
    await vscode.commands.executeCommand('poeProxy.clearApiKey');
    assert.strictEqual(await api.ctx.extension.secrets.get('poeProxy.apiKey'), undefined);
    assert.strictEqual((await request(port, 'GET', '/health')).json().keyConfigured, false);
    assert.strictEqual(api.ctx.statusBar.state, 'no-key');
    const r = await vscode.commands.executeCommand<{ ok: boolean }>('poeProxy.setApiKey', DEFAULT_API_KEY);
    assert.strictEqual(r.ok, true);
  });

  it('restarts on the new port when the port setting changes', async () => {
    const old = port;
    const next = await freePort();
    await setGlobal('port', next);
    await running(next);
    port = next;
    assert.strictEqual((await request(next, 'GET', '/health')).json().port, next);
    assert.ok(await isRefused(old), 'the old port is released');
    assert.strictEqual((await chat(next, 'on the new port', { stream: false })).status, 200);
  });

  it('ignores a baseURL (and port) from the workspace settings', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the host opened a workspace folder');
    const evil = await FakePoe.start();
    const dir = path.join(folder.uri.fsPath, '.vscode');
    const file = path.join(dir, 'settings.json');
    await fsp.mkdir(dir, { recursive: true });
    try {
      // The workspace file is in effect once the change event for a setting from it fired; the extension's
      // own listener (registered at activation, so earlier) has seen that event by then.
      const loaded = new Promise<void>((resolve) => {
        const sub = vscode.workspace.onDidChangeConfiguration((e) => {
          if (!e.affectsConfiguration('editor.tabSize') || vscode.workspace.getConfiguration('editor').get('tabSize') !== 7) return;
          sub.dispose();
          resolve();
        });
      });
      await fsp.writeFile(file, JSON.stringify({ 'poeProxy.baseURL': evil.url, 'poeProxy.port': port + 1, 'editor.tabSize': 7 }));
      await loaded;
      assert.strictEqual(api.ctx.config.baseUrl, fake.url);
      assert.strictEqual(api.ctx.config.port, port);
      const res = await chat(port, 'is the workspace ignored?', { stream: false });
      assert.strictEqual(res.status, 200, res.text);
      const key = await vscode.commands.executeCommand<{ ok: boolean }>('poeProxy.setApiKey', DEFAULT_API_KEY);
      assert.strictEqual(key.ok, true);
      assert.strictEqual(evil.requests.length, 0, 'nothing (least of all the key) went to the workspace URL');
      assert.strictEqual(api.state().port, port);
    } finally {
      await fsp.rm(file, { force: true });
      await evil.close();
    }
  });

  it("uses another window's proxy when the port is taken by one, and takes over when it goes away", async function () {
    this.timeout(45_000);
    const shared = await freePort();
    const other = await fakeListener(shared, 200, { name: 'poe-proxy', version: '0.0.0', pid: 4242, port: shared });
    let closed = false;
    try {
      await setGlobal('port', shared);
      const s = await waitFor('"served by another window"', () => api.state().kind === 'external' && api.state());
      assert.strictEqual(s.url, `http://127.0.0.1:${shared}`);
      assert.strictEqual(api.baseUrl(), `http://127.0.0.1:${shared}/v1`);
      assert.strictEqual(api.ctx.statusBar.state, 'external');
      assert.match(api.ctx.statusBar.item.text, /Poe 1\.2\dM/, "the balance still shows, from this window's own usage service");
      assert.strictEqual(await vscode.commands.executeCommand('poeProxy.refreshBalance'), fake.balance);
      await closeServer(other);
      closed = true;
      await waitFor('this window to take over the port', () => api.state().kind === 'running' && api.state().port === shared, 20_000);
      assert.strictEqual((await request(shared, 'GET', '/health')).json().pid, process.pid);
      port = shared;
    } finally {
      if (!closed) await closeServer(other);
    }
  });

  it("does not take over a port that another window's Stop freed, even before its shared-flag poll has run", async function () {
    this.timeout(45_000);
    const FLAG = 'poeProxy.stoppedEverywhere';
    const shared = await freePort();
    const other = await fakeListener(shared, 200, { name: 'poe-proxy', version: '0.0.0', pid: 4242, port: shared });
    let closed = false;
    try {
      await setGlobal('port', shared);
      await waitFor('"served by another window"', () => api.state().kind === 'external');
      // The other window's Stop: the shared flag first, then its server goes away.
      await api.ctx.extension.globalState.update(FLAG, true);
      await closeServer(other);
      closed = true;
      // This window's takeover tick (every 5 s) can come before its poll of the flag (every 2 s): run the tick now.
      await (api.ctx.controller as unknown as { checkTakeover(): Promise<void> }).checkTakeover();
      await api.ctx.controller.idle();
      assert.strictEqual(api.state().kind, 'stopped', 'stopped like the other window, not serving');
      await assert.rejects(request(shared, 'GET', '/health'), /ECONNREFUSED/, 'nothing listens on the freed port');
    } finally {
      if (!closed) await closeServer(other);
      await setGlobal('port', port);
      await vscode.commands.executeCommand('poeProxy.start');
      await running();
    }
    assert.strictEqual(api.ctx.extension.globalState.get(FLAG), undefined, 'Start cleared the shared flag');
  });

  it('reports a port taken by another program as an error, and recovers on another port', async () => {
    const taken = await freePort();
    const foreign = await fakeListener(taken, 404, { hello: 'not a proxy' });
    try {
      await setGlobal('port', taken);
      const s = await waitFor('the error state', () => api.state().kind === 'error' && api.state());
      assert.match(s.message ?? '', new RegExp(`Port ${taken} .*in use by another program`));
      assert.strictEqual(api.ctx.statusBar.state, 'error');
      assert.ok(api.ctx.statusBar.item.backgroundColor instanceof vscode.ThemeColor);
      const next = await freePort();
      await vscode.commands.executeCommand('poeProxy.changePort', next);
      assert.strictEqual(section().inspect('port')?.globalValue, next, '"Use Another Port" writes the user setting');
      await running(next);
      port = next;
    } finally {
      await closeServer(foreign);
    }
  });

  it('Pick Models limits /v1/models to the picks and saves them as a user models file', async () => {
    const picked = await vscode.commands.executeCommand<string[]>('poeProxy.pickModels', ['GPT-4.1', LIVE_ONLY, 'No-Such-Model']);
    assert.deepStrictEqual(picked, ['GPT-4.1', LIVE_ONLY]);
    const list = (await request(port, 'GET', '/v1/models')).json();
    assert.deepStrictEqual(list.data.map((m: { id: string }) => m.id).sort(), ['GPT-4.1', LIVE_ONLY].sort());
    const liveOnly = list.data.find((m: { id: string }) => m.id === LIVE_ONLY);
    assert.deepStrictEqual(liveOnly.pricing, { base_points: 0, points_per_1k_tokens: 0 });
    const file = path.join(api.ctx.extension.globalStorageUri.fsPath, 'models.yaml');
    const text = await fsp.readFile(file, 'utf8');
    assert.match(text, /prices unknown/);
    assert.strictEqual(api.ctx.effectiveModelsFile(), file);
    assert.strictEqual((await chat(port, 'a live-only model', { model: LIVE_ONLY, stream: false })).status, 200);
    // A restart keeps the picks.
    await vscode.commands.executeCommand('poeProxy.restart');
    await running();
    const again = (await request(port, 'GET', '/v1/models')).json();
    assert.strictEqual(again.data.length, 2);
    await api.ctx.models.reset();
    await api.ctx.controller.reloadModels();
    assert.ok((await request(port, 'GET', '/v1/models')).json().data.length > 10, 'back to the bundled models.yaml');
  });

  it('requires the local access key when poeProxy.requireAccessKey is on', async () => {
    await setGlobal('requireAccessKey', true);
    const key = await waitFor('a generated access key', () => api.ctx.keys.localAccessKey);
    assert.match(key, /^pp-/);
    assert.strictEqual(await api.ctx.extension.secrets.get('poeProxy.accessKey'), key);
    await waitFor('the server to require it', async () => (await request(port, 'GET', '/v1/models')).status === 401);
    assert.strictEqual((await request(port, 'GET', '/v1/models', undefined, { authorization: `Bearer ${key}` })).status, 200);
    assert.strictEqual((await request(port, 'GET', '/health')).status, 200, '/health stays open');
    assert.strictEqual((await chat(port, 'with the access key', { stream: false }, { authorization: `Bearer ${key}` })).status, 200);
    assert.strictEqual(fake.chatRequests().at(-1)?.headers.authorization, `Bearer ${DEFAULT_API_KEY}`, 'the Poe key, not the access key, goes upstream');
    await setGlobal('requireAccessKey', undefined);
    await waitFor('the key requirement lifted', async () => (await request(port, 'GET', '/v1/models')).status === 200);
  });

  it('Stop lets an in-flight stream finish, releases the port; Start serves again', async () => {
    fake.reply = () => ({ chunks: ['one ', 'two ', 'three ', 'four ', 'five'], chunkDelayMs: 150 });
    try {
      const streaming = chat(port, 'stream please', { stream: true });
      await waitFor('the stream to reach Poe', () => fake.inFlight() > 0);
      await vscode.commands.executeCommand('poeProxy.stop');
      const res = await streaming;
      assert.strictEqual(res.status, 200);
      assert.ok(res.text.includes('five') && res.text.includes('[DONE]'), `the stream finished during the grace period: ${res.text.slice(-300)}`);
      assert.ok(!res.text.includes('proxy_shutdown'), 'not cut off');
      assert.strictEqual(api.state().kind, 'stopped');
      assert.strictEqual(api.ctx.statusBar.state, 'stopped');
      assert.ok(await isRefused(port));
    } finally {
      fake.reply = defaultReply;
    }
    await vscode.commands.executeCommand('poeProxy.start');
    await running();
    assert.strictEqual((await request(port, 'GET', '/health')).status, 200);
  });
});
