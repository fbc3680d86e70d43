// The status bar tells the truth in the real host: no key, key rejected (a key Poe answers 401 to),
// can't reach Poe (the fake closed), paused (one notification), port in use — each with its colour,
// its reason, the last good balance's time and the actions that fix it; Refresh Balance says why.
import * as assert from 'assert';
import * as http from 'http';
import * as vscode from 'vscode';
import type { PoeProxyApi } from '../../src/vscode/extension';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';
import { freePort, waitFor } from '../support/wait';

const EXTENSION_ID = 'poe-proxy.poe-proxy-vscode';

function section(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('poeProxy');
}

async function setGlobal(key: string, value: unknown): Promise<void> {
  await section().update(key, value, vscode.ConfigurationTarget.Global);
}

/** POST a chat completion to the proxy; resolves with the HTTP status. */
function chat(port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const body = JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'hi' }] });
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('Status bar states in the real VS Code host', function () {
  this.timeout(60_000);
  let api: PoeProxyApi;
  let fake: FakePoe;
  let fakePort: number;

  const tooltip = (): string => (api.ctx.statusBar.item.tooltip as vscode.MarkdownString).value;
  const background = (): string | undefined => (api.ctx.statusBar.item.backgroundColor as vscode.ThemeColor | undefined)?.id;
  const enabled = (): readonly string[] => {
    const trusted = (api.ctx.statusBar.item.tooltip as vscode.MarkdownString).isTrusted;
    return typeof trusted === 'object' ? trusted.enabledCommands : [];
  };
  const state = (s: string) => waitFor(`the status bar in state ${s}`, () => api.ctx.statusBar.state === s);
  const noticesSince = (n: number) => api.ctx.notifier.shown.slice(n);

  before(async () => {
    fake = await FakePoe.start({ balance: 2_345_678 });
    fakePort = Number(new URL(fake.url).port);
    const ext = vscode.extensions.getExtension<PoeProxyApi>(EXTENSION_ID);
    assert.ok(ext);
    api = await ext.activate();
    await api.ready;
    await api.ctx.keys.clearPoeKey();
    await setGlobal('baseURL', fake.url);
    await setGlobal('port', await freePort());
    await setGlobal('pointsCutoff', 0);
    await vscode.commands.executeCommand('poeProxy.start');
    await waitFor('the proxy running', () => api.state().kind === 'running');
  });

  after(async () => {
    for (const key of ['baseURL', 'port', 'pointsCutoff']) await setGlobal(key, undefined).catch(() => undefined);
    await api?.ctx.keys.clearPoeKey().catch(() => undefined);
    await fake?.close();
  });

  it('no key: warning colour, "set key", and Set API Key / Get a Key (a real link) in the tooltip', async () => {
    await state('no-key');
    assert.match(api.ctx.statusBar.item.text, /Poe: set key/);
    assert.strictEqual(background(), 'statusBarItem.warningBackground');
    assert.ok(tooltip().includes('[Set API Key](command:poeProxy.setApiKey)'), tooltip());
    assert.ok(tooltip().includes('[Get a Key](https://poe.com/api_key)'), tooltip());
    assert.ok(enabled().includes('poeProxy.setApiKey'));
  });

  it('requests refused for lack of a key: one notification in the editor, not one per request', async () => {
    const before = api.ctx.notifier.shown.length;
    assert.strictEqual(await chat(api.state().port!), 401);
    assert.strictEqual(await chat(api.state().port!), 401);
    await waitFor('the ledger entries', () => api.ctx.controller.lastRequest?.httpStatus === 401);
    const refused = noticesSince(before).filter((n) => /refused because no Poe API key is set/.test(n.message));
    assert.strictEqual(refused.length, 1, JSON.stringify(noticesSince(before)));
    assert.deepStrictEqual(refused[0].actions, ['Set API Key', 'Get a Key']);
  });

  it('key rejected: a stored key Poe answers 401 to shows "key rejected" in the error colour, with why and what to do', async () => {
    await api.ctx.keys.setPoeKey('revoked-key'); // stored without the check, as a key revoked later
    await state('key-rejected');
    assert.match(api.ctx.statusBar.item.text, /Poe: key rejected/);
    assert.strictEqual(background(), 'statusBarItem.errorBackground');
    assert.match(tooltip(), /key rejected by Poe/);
    assert.match(tooltip(), /Poe rejected the API key/);
    for (const link of ['[Set API Key](command:poeProxy.setApiKey)', '[Get a Key](https://poe.com/api_key)', '[Retry](command:poeProxy.refreshBalance)']) {
      assert.ok(tooltip().includes(link), `${link} in ${tooltip()}`);
    }
    const before = api.ctx.notifier.shown.length;
    const value = await vscode.commands.executeCommand('poeProxy.refreshBalance');
    assert.strictEqual(value, undefined);
    const [notice] = noticesSince(before);
    assert.ok(notice, 'Refresh Balance reported the failure');
    assert.strictEqual(notice.level, 'error');
    assert.match(notice.message, /could not fetch the balance\. Poe rejected the API key/);
    assert.deepStrictEqual(notice.actions, ['Set API Key', 'Get a Key']);
  });

  it('a valid key brings it back to running with the balance; "API key stored" offers the next steps', async () => {
    const before = api.ctx.notifier.shown.length;
    assert.ok((await vscode.commands.executeCommand<{ ok: boolean }>('poeProxy.setApiKey', DEFAULT_API_KEY)).ok);
    const stored = noticesSince(before).find((n) => /API key stored\. Balance: 2\.35M points/.test(n.message));
    assert.ok(stored, JSON.stringify(noticesSince(before)));
    assert.deepStrictEqual(stored.actions, ['Copy Base URL', 'Configure a Client…', 'Open Walkthrough']);
    await state('running');
    await waitFor('the balance', () => api.ctx.statusBar.item.text.includes('2.35M'));
    assert.strictEqual(background(), undefined);
    assert.ok(!/rejected/.test(tooltip()), tooltip());
  });

  it("can't reach Poe: the last good balance and its time stay, with Retry and Open Setting (Base URL); Retry recovers", async () => {
    const goodAt = api.ctx.balance.lastFetchedAt;
    assert.ok(goodAt, 'a balance was fetched');
    await fake.close();
    const before = api.ctx.notifier.shown.length;
    assert.strictEqual(await vscode.commands.executeCommand('poeProxy.refreshBalance'), undefined);
    await state('offline');
    assert.match(api.ctx.statusBar.item.text, /Poe: offline/);
    assert.strictEqual(background(), 'statusBarItem.warningBackground');
    assert.match(tooltip(), /can't reach Poe/);
    assert.match(tooltip(), /Could not get an answer from Poe/);
    assert.ok(tooltip().includes(`last fetched ${new Date(goodAt).toLocaleString()}`), tooltip());
    assert.ok(tooltip().includes('Balance: 2.35M points — last fetched'), 'the last good balance stays');
    const openSetting = `[Open Setting (Base URL)](command:workbench.action.openSettings?${encodeURIComponent('["poeProxy.baseURL"]')})`;
    assert.ok(tooltip().includes('[Retry](command:poeProxy.refreshBalance)'), tooltip());
    assert.ok(tooltip().includes(openSetting), tooltip());
    assert.ok(enabled().includes('workbench.action.openSettings') && enabled().includes('poeProxy.refreshBalance'));
    const [notice] = noticesSince(before);
    assert.strictEqual(notice?.level, 'warning');
    assert.match(notice.message, /could not fetch the balance\. Could not get an answer from Poe: cannot reach Poe at/);
    assert.deepStrictEqual(notice.actions, ['Retry', 'Open Setting (Base URL)', 'Show Logs']);

    // The Open Setting action opens the Settings editor.
    await vscode.commands.executeCommand('workbench.action.openSettings', 'poeProxy.baseURL');
    await waitFor('the Settings editor', () => vscode.window.tabGroups.activeTabGroup.activeTab?.label === 'Settings');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');

    // Poe answers again on the same address: Retry clears the state.
    fake = await FakePoe.start({ balance: 2_000_000, port: fakePort });
    assert.strictEqual(await vscode.commands.executeCommand('poeProxy.refreshBalance'), 2_000_000);
    await state('running');
    assert.ok(!/can't reach/.test(tooltip()));
  });

  it('a request that finds Poe unreachable re-checks at once (no wait for the 5-minute timer)', async () => {
    await fake.close();
    assert.strictEqual(await chat(api.state().port!), 502);
    await state('offline');
    fake = await FakePoe.start({ balance: 2_000_000, port: fakePort });
    await vscode.commands.executeCommand('poeProxy.refreshBalance');
    await state('running');
  });

  it('paused: one notification when the pause starts, Change Cutoff in the tooltip', async () => {
    const before = api.ctx.notifier.shown.length;
    await setGlobal('pointsCutoff', 3_000_000);
    await state('paused');
    assert.strictEqual(background(), 'statusBarItem.warningBackground');
    const cutoffLink = `[Change Cutoff](command:workbench.action.openSettings?${encodeURIComponent('["poeProxy.pointsCutoff"]')})`;
    assert.ok(tooltip().includes(cutoffLink), tooltip());
    api.ctx.statusBar.update(); // still paused: no second notification
    await vscode.commands.executeCommand('poeProxy.refreshBalance');
    const paused = noticesSince(before).filter((n) => /Poe proxy paused/.test(n.message));
    assert.strictEqual(paused.length, 1, JSON.stringify(noticesSince(before)));
    assert.match(paused[0].message, /your balance \(2M points\) is below the cutoff of 3M/);
    assert.deepStrictEqual(paused[0].actions, ['Change Cutoff', 'Retry']);
    await setGlobal('pointsCutoff', 0);
    await state('running');
  });

  it('port in use: "port in use" in the error colour with Use Another Port', async () => {
    const taken = await freePort();
    const other = http.createServer((_req, res) => res.end('not a proxy'));
    await new Promise<void>((r) => other.listen(taken, '127.0.0.1', () => r()));
    try {
      await setGlobal('port', taken);
      await state('error');
      assert.match(api.ctx.statusBar.item.text, /Poe: port in use/);
      assert.strictEqual(background(), 'statusBarItem.errorBackground');
      assert.ok(tooltip().includes('[Use Another Port](command:poeProxy.changePort)'), tooltip());
      assert.ok(enabled().includes('poeProxy.changePort'));
      await vscode.commands.executeCommand('poeProxy.changePort', await freePort());
      await state('running');
    } finally {
      other.closeAllConnections();
      await new Promise((r) => other.close(r));
    }
  });

  it('Set API Key while Poe is unreachable says so once and offers Save Anyway, Open Setting (Base URL), Try Again', async () => {
    const dead = await freePort();
    await setGlobal('baseURL', `http://127.0.0.1:${dead}`);
    try {
      const before = api.ctx.notifier.shown.length;
      const check = await vscode.commands.executeCommand<{ ok: boolean; message: string; unreachable?: boolean }>('poeProxy.setApiKey', 'some-new-key');
      assert.strictEqual(check.ok, false);
      assert.strictEqual(check.unreachable, true);
      const [notice] = noticesSince(before).filter((n) => /key was not stored/.test(n.message));
      assert.ok(notice, JSON.stringify(noticesSince(before)));
      assert.strictEqual(notice.message.match(/reach Poe/gi)?.length, 1, notice.message);
      assert.match(notice.message, new RegExp(`127\\.0\\.0\\.1:${dead}`));
      assert.deepStrictEqual(notice.actions, ['Save Anyway', 'Open Setting (Base URL)', 'Try Again']);
      assert.strictEqual(api.ctx.keys.poeKey, DEFAULT_API_KEY, 'the stored key is unchanged');
    } finally {
      await setGlobal('baseURL', fake.url);
    }
  });

  it("Stop stops every window (shared flag, no takeover); another window's Stop and Start are followed here", async () => {
    const FLAG = 'poeProxy.stoppedEverywhere';
    await vscode.commands.executeCommand('poeProxy.stop');
    await state('stopped');
    assert.strictEqual(api.ctx.extension.globalState.get(FLAG), true);
    assert.match(tooltip(), /Stopped in every VS Code window/);
    // Another window presses Start (the flag clears): this window starts again.
    await api.ctx.extension.globalState.update(FLAG, undefined);
    await waitFor('running again', () => api.state().kind === 'running');
    // Another window presses Stop: this one stops too.
    await api.ctx.extension.globalState.update(FLAG, true);
    await waitFor('stopped by the other window', () => api.state().kind === 'stopped');
    await vscode.commands.executeCommand('poeProxy.start');
    await waitFor('running after Start', () => api.state().kind === 'running');
    assert.strictEqual(api.ctx.extension.globalState.get(FLAG), undefined);
  });
});
