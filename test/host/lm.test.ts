// Poe's models through vscode.lm in the real extension host (VS Code 1.104 via code-server): the
// language-model provider served in process by the proxy's pipeline, against a FakePoe; and the
// "Configure client" commands writing into a temporary HOME and undoing.
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { FOOTER_MARK } from '../../src/core/exchange/footer';
import { estimateTokens } from '../../src/core/tokens';
import { createTokenEngine } from '../../src/core/tokens/engine';
import type { LedgerEntry } from '../../src/core/store/ledger';
import type { PoeProxyApi } from '../../src/vscode/extension';
import { LM_CLIENT, LM_VENDOR } from '../../src/vscode/lmProvider';
import { postChat } from '../support/rawClient';
import { freePort, waitFor } from '../support/wait';
import { defaultReply, lastUserText } from '../support/fake/reply';
import { DEFAULT_API_KEY, FakePoe } from '../support/fake/server';

const EXTENSION_ID = 'poe-proxy.poe-proxy-vscode';

function section(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('poeProxy');
}

async function setGlobal(key: string, value: unknown): Promise<void> {
  await section().update(key, value, vscode.ConfigurationTarget.Global);
}

describe('Copilot Chat language models (vscode.lm) and client configuration', function () {
  this.timeout(60_000);
  let api: PoeProxyApi;
  let fake: FakePoe;
  let port: number;

  /** The next ledger entry this window records (HTTP, in process or detached alike). */
  function nextEntry(pred: (e: LedgerEntry) => boolean = () => true): Promise<LedgerEntry> {
    return new Promise((resolve) => {
      const sub = api.ctx.controller.onDidFinishRequest((e) => {
        if (!pred(e)) return;
        sub.dispose();
        resolve(e);
      });
    });
  }

  async function model(id = 'GPT-4.1'): Promise<vscode.LanguageModelChat> {
    const [m] = await vscode.lm.selectChatModels({ vendor: LM_VENDOR, id });
    assert.ok(m, `model ${id} from ${LM_VENDOR}`);
    return m;
  }

  async function collect(res: vscode.LanguageModelChatResponse): Promise<string[]> {
    const parts: string[] = [];
    for await (const t of res.text) parts.push(t);
    return parts;
  }

  before(async () => {
    fake = await FakePoe.start();
    const ext = vscode.extensions.getExtension<PoeProxyApi>(EXTENSION_ID);
    assert.ok(ext);
    api = await ext.activate();
    await api.ready;
    await api.ctx.models.reset();
    port = await freePort();
    await setGlobal('baseURL', fake.url);
    await setGlobal('port', port);
    await setGlobal('pointsCutoff', undefined);
    const key = await vscode.commands.executeCommand<{ ok: boolean }>('poeProxy.setApiKey', DEFAULT_API_KEY);
    assert.strictEqual(key.ok, true);
    await vscode.commands.executeCommand('poeProxy.start');
    await waitFor('the proxy running', () => api.state().kind === 'running' && api.state().port === port);
  });

  after(async () => {
    fake.reply = defaultReply;
    for (const key of ['baseURL', 'port', 'pointsCutoff']) await setGlobal(key, undefined).catch(() => undefined);
    await api?.ctx.keys.clearPoeKey().catch(() => undefined);
    await fake?.close();
  });

  beforeEach(() => {
    fake.reply = defaultReply;
  });

  it('vscode.lm.selectChatModels finds the text models of the registry, with context sizes and tool calling', async () => {
    const models = await vscode.lm.selectChatModels({ vendor: LM_VENDOR });
    const registry = api.ctx.controller.registry!;
    const text = registry.models.filter((m) => m.modality === 'text');
    assert.deepStrictEqual(models.map((m) => m.id).sort(), text.map((m) => m.id).sort());
    assert.ok(!models.some((m) => m.id === 'GPT-Image-1'), 'image models are not chat models');
    const gpt = models.find((m) => m.id === 'GPT-4.1')!;
    assert.strictEqual(gpt.vendor, LM_VENDOR);
    assert.strictEqual(gpt.name, 'GPT-4.1');
    const context = registry.contextLimit(registry.resolve('GPT-4.1')!, 0);
    assert.ok(gpt.maxInputTokens > context / 2 && gpt.maxInputTokens <= context, `maxInputTokens ${gpt.maxInputTokens} within the context ${context}`);
  });

  it('the model list follows Pick Models', async () => {
    const all = (await vscode.lm.selectChatModels({ vendor: LM_VENDOR })).length;
    try {
      await vscode.commands.executeCommand('poeProxy.pickModels', ['GPT-4.1', 'o3', 'GPT-Image-1']);
      await waitFor('only the picked text models', async () => {
        const ids = (await vscode.lm.selectChatModels({ vendor: LM_VENDOR })).map((m) => m.id).sort();
        return JSON.stringify(ids) === JSON.stringify(['GPT-4.1', 'o3']);
      });
    } finally {
      await api.ctx.models.reset();
      await api.ctx.controller.reloadModels();
      api.ctx.lm.invalidate();
    }
    await waitFor('all models again', async () => (await vscode.lm.selectChatModels({ vendor: LM_VENDOR })).length === all);
  });

  it("sendRequest streams the fake upstream's text without a footer, and the ledger and status bar see it", async () => {
    fake.reply = () => ({ chunks: ['Hello', ' from', ' fake', ' Poe'], chunkDelayMs: 30 });
    const before = fake.chatRequests().length;
    const entry = nextEntry((e) => e.client === LM_CLIENT);
    const m = await model();
    const res = await m.sendRequest([vscode.LanguageModelChatMessage.User('say hello')], {}, new vscode.CancellationTokenSource().token);
    const parts = await collect(res);
    assert.strictEqual(parts.join(''), 'Hello from fake Poe');
    assert.ok(parts.length >= 3, `streamed in pieces (${parts.length})`);
    assert.ok(!parts.join('').includes(FOOTER_MARK), 'no footer in a language-model answer');
    const up = fake.chatRequests().slice(before);
    assert.strictEqual(up.length, 1);
    assert.strictEqual(up[0].headers.authorization, `Bearer ${DEFAULT_API_KEY}`);
    assert.deepStrictEqual(up[0].body.messages, [{ role: 'user', content: 'say hello' }]);
    const e = await entry;
    assert.strictEqual(e.status, 'ok');
    assert.strictEqual(e.model, 'GPT-4.1');
    assert.ok(typeof e.points === 'number' && e.points > 0, `points recorded: ${e.points}`);
    assert.strictEqual(api.ctx.controller.lastRequest?.client, LM_CLIENT, 'the status bar tooltip reads the same entry');
    await api.ctx.ledger.flush();
    const [last] = await api.ctx.ledger.read({ limit: 1 });
    assert.strictEqual(last.client, LM_CLIENT);
  });

  it("countTokens returns the tokenizer's exact count for text and messages", async function () {
    this.timeout(90_000);
    // Digits tell the exact count (o200k groups them by three) from the ~4 characters per token estimate.
    const text = '1234567890'.repeat(10) + ' hello world';
    const exact = createTokenEngine().count(text, 'o200k_base').count;
    assert.notStrictEqual(exact, estimateTokens(text), 'the probe text separates exact from estimated counts');
    const m = await model();
    // The tokenizer worker starts on first use; until it answers (bounded wait) counts are estimates.
    const n = await waitFor(
      'the exact count',
      async () => {
        const c = await m.countTokens(text);
        return c === exact && c;
      },
      60_000,
    );
    assert.strictEqual(n, exact);
    assert.strictEqual(await m.countTokens(vscode.LanguageModelChatMessage.User(text)), exact + 4, 'a message adds its framing');
    assert.strictEqual(await m.countTokens(''), 0);
  });

  it('tool calls come back as LanguageModelToolCallPart, and tool results go up as tool messages', async () => {
    fake.reply = () => ({ toolCalls: [{ id: 'call_7', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
    const m = await model();
    const tools: vscode.LanguageModelChatTool[] = [
      { name: 'get_weather', description: 'Weather for a city', inputSchema: { type: 'object', properties: { city: { type: 'string' } } } },
    ];
    const res = await m.sendRequest([vscode.LanguageModelChatMessage.User('weather in Paris?')], { tools }, new vscode.CancellationTokenSource().token);
    const calls: vscode.LanguageModelToolCallPart[] = [];
    for await (const p of res.stream) if (p instanceof vscode.LanguageModelToolCallPart) calls.push(p);
    assert.strictEqual(calls.length, 1);
    assert.strictEqual(calls[0].callId, 'call_7');
    assert.strictEqual(calls[0].name, 'get_weather');
    assert.deepStrictEqual(calls[0].input, { city: 'Paris' });
    assert.strictEqual(fake.chatRequests().at(-1)?.body.tools?.[0]?.function?.name, 'get_weather');

    fake.reply = defaultReply;
    const follow = await m.sendRequest(
      [
        vscode.LanguageModelChatMessage.User('weather in Paris?'),
        vscode.LanguageModelChatMessage.Assistant([new vscode.LanguageModelToolCallPart('call_7', 'get_weather', { city: 'Paris' })]),
        vscode.LanguageModelChatMessage.User([new vscode.LanguageModelToolResultPart('call_7', [new vscode.LanguageModelTextPart('sunny, 21 °C')])]),
      ],
      { tools },
      new vscode.CancellationTokenSource().token,
    );
    await collect(follow);
    const sent = fake.chatRequests().at(-1)?.body.messages;
    assert.deepStrictEqual(sent.slice(1), [
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_7', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_7', content: 'sunny, 21 °C' },
    ]);
  });

  // VS Code 1.104 forwards a sendRequest token to the provider only while the request is starting:
  // the RPC layer drops the cancel listener once $startChatRequest has replied (rpcProtocol's
  // PendingRPCReply disposes it), so the provider's token is cancelled by the host itself (e.g. when
  // a chat session is stopped and VS Code cancels the provider call), which is what this drives.
  it('cancelling the provider\'s token aborts the upstream stream and records "aborted"', async () => {
    fake.reply = () => ({ chunks: Array.from({ length: 60 }, (_, i) => `w${i} `), chunkDelayMs: 100 });
    const entry = nextEntry((e) => e.client === LM_CLIENT);
    const info = (await api.ctx.lm.provideLanguageModelChatInformation()).find((m) => m.id === 'GPT-4.1')!;
    const cts = new vscode.CancellationTokenSource();
    const parts: vscode.LanguageModelResponsePart[] = [];
    const progress: vscode.Progress<vscode.LanguageModelResponsePart> = {
      report: (p) => {
        parts.push(p);
        if (parts.length === 2) cts.cancel();
      },
    };
    const done = api.ctx.lm.provideLanguageModelChatResponse(
      info,
      [vscode.LanguageModelChatMessage.User('a long answer please')],
      { toolMode: vscode.LanguageModelChatToolMode.Auto },
      progress,
      cts.token,
    );
    const aborted = await fake.waitForAbort(15_000);
    await done; // a cancelled request ends quietly
    assert.strictEqual(aborted.path, '/v1/chat/completions');
    assert.ok(aborted.chunksSent < 60, `upstream stopped early (${aborted.chunksSent} frames)`);
    assert.ok(parts.length >= 2 && parts.length < 10, `${parts.length} parts before the abort`);
    assert.ok(parts[0] instanceof vscode.LanguageModelTextPart);
    assert.strictEqual((await entry).status, 'aborted');
  });

  it('a token cancelled before sendRequest sends nothing to Poe', async () => {
    const before = fake.chatRequests().length;
    const cts = new vscode.CancellationTokenSource();
    cts.cancel();
    const m = await model();
    await assert.rejects(Promise.resolve(m.sendRequest([vscode.LanguageModelChatMessage.User('never')], {}, cts.token)).then((r) => collect(r)));
    // A request that goes through next: had the cancelled one been sent, it would have reached Poe first.
    await collect(await m.sendRequest([vscode.LanguageModelChatMessage.User('the next one')], {}, new vscode.CancellationTokenSource().token));
    const seen = fake.chatRequests().slice(before);
    assert.deepStrictEqual(
      seen.map((r) => lastUserText(r.body)),
      ['the next one'],
    );
  });

  it('shows the paused message below the cutoff and does not call Poe', async () => {
    await setGlobal('pointsCutoff', 1e12);
    try {
      await waitFor('the cutoff applied', () => api.ctx.controller.activeConfig?.pointsCutoff === 1e12);
      const before = fake.chatRequests().length;
      const m = await model();
      const res = await m.sendRequest([vscode.LanguageModelChatMessage.User('hi')], {}, new vscode.CancellationTokenSource().token);
      assert.match((await collect(res)).join(''), /paused/);
      assert.strictEqual(fake.chatRequests().length, before);
    } finally {
      await setGlobal('pointsCutoff', undefined);
    }
  });

  it('keeps answering while this window does not serve (proxy stopped), with the same ledger and status bar', async () => {
    await vscode.commands.executeCommand('poeProxy.stop');
    try {
      assert.strictEqual(api.state().kind, 'stopped');
      const m = await model();
      const before = fake.chatRequests().length;
      const ledgerBefore = (await api.ctx.ledger.read({ limit: 1000 })).length;
      const res = await m.sendRequest([vscode.LanguageModelChatMessage.User('while stopped')], {}, new vscode.CancellationTokenSource().token);
      assert.strictEqual((await collect(res)).join(''), 'Echo: while stopped');
      assert.strictEqual(fake.chatRequests().length, before + 1);
      await waitFor('the ledger entry', async () => {
        await api.ctx.ledger.flush();
        return (await api.ctx.ledger.read({ limit: 1000 })).length > ledgerBefore;
      });
      const [last] = await api.ctx.ledger.read({ limit: 1 });
      assert.strictEqual(last.client, LM_CLIENT);
    } finally {
      await vscode.commands.executeCommand('poeProxy.start');
      await waitFor('the proxy running again', () => api.state().kind === 'running');
    }
  });

  it("the proxy and Copilot Chat count with the window's one token counter (one tokenizer worker), serving or not", async function () {
    this.timeout(90_000);
    const tokens = api.ctx.engine.tokens;
    const m = await model();
    let n = 0;
    // A text not counted before reaches the tokenizer (a cache miss) of whichever counter its path uses.
    const counted = async (via: string, count: (text: string) => PromiseLike<unknown>): Promise<void> => {
      const before = tokens.stats().cacheMisses;
      await count(`shared counter ${via} ${Date.now()} ${++n}`);
      assert.strictEqual(tokens.stats().cacheMisses, before + 1, `${via} counts with the window's token counter`);
    };
    await counted('Copilot Chat', (text) => m.countTokens(text));
    const workers = tokens.stats().workerStarts;
    await counted('HTTP', async (text) => {
      const r = await postChat(
        api.state().url!,
        { model: 'GPT-4.1', messages: [{ role: 'user', content: text }] },
        { path: '/v1/messages/count_tokens', headers: { 'anthropic-version': '2023-06-01' } },
      );
      assert.strictEqual(r.status, 200, r.body);
    });
    await vscode.commands.executeCommand('poeProxy.stop');
    try {
      assert.strictEqual(api.state().kind, 'stopped');
      await counted('Copilot Chat while stopped', (text) => m.countTokens(text));
    } finally {
      await vscode.commands.executeCommand('poeProxy.start');
      await waitFor('the proxy running again', () => api.state().kind === 'running');
    }
    await counted('HTTP after a restart', async (text) => {
      const r = await postChat(
        api.state().url!,
        { model: 'GPT-4.1', messages: [{ role: 'user', content: text }] },
        { path: '/v1/messages/count_tokens', headers: { 'anthropic-version': '2023-06-01' } },
      );
      assert.strictEqual(r.status, 200, r.body);
    });
    assert.strictEqual(tokens.stats().workerStarts, workers, 'the same tokenizer worker across a stop and a start');
  });

  const previewDiffs = (): vscode.TabInputTextDiff[] =>
    vscode.window.tabGroups.all
      .flatMap((g) => g.tabs)
      .map((t) => t.input)
      .filter((i): i is vscode.TabInputTextDiff => i instanceof vscode.TabInputTextDiff && i.modified.scheme === 'poe-proxy-preview');

  it('"Configure Continue" shows the diff (current ↔ planned) while Write/Discard is asked, writes on Write and closes the diff', async () => {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'poe-lm-home-'));
    const file = path.join(home, '.continue', 'config.yaml');
    try {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const before = 'name: Mine\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: Local\n    provider: ollama\n    model: llama3\n';
      await fsp.writeFile(file, before);
      let asked: { message: string; actions: string[]; original: string; planned: string } | undefined;
      const prompt = async (message: string, ...actions: string[]): Promise<string> => {
        const diff = previewDiffs().find((i) => i.modified.path === file);
        assert.ok(diff, 'the diff is open while the question is asked');
        asked = {
          message,
          actions,
          original: (await vscode.workspace.openTextDocument(diff.original)).getText(),
          planned: (await vscode.workspace.openTextDocument(diff.modified)).getText(),
        };
        return 'Write';
      };
      const r = await vscode.commands.executeCommand<{ outcome: string; changeId: string; files: string[] }>('poeProxy.configureContinue', { home, prompt });
      assert.ok(asked, 'Write/Discard was asked');
      assert.deepStrictEqual(asked.actions, ['Write', 'Discard']);
      assert.match(asked.message, new RegExp(`Configure Continue to use the Poe proxy: change ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\?`));
      assert.strictEqual(r.outcome, 'written');
      assert.deepStrictEqual(r.files, [file]);
      assert.strictEqual(asked.original, before);
      assert.strictEqual(asked.planned, await fsp.readFile(file, 'utf8'), 'what was previewed is what was written');
      assert.match(asked.planned, /name: Local[\s\S]*name: "Poe: GPT-4\.1"[\s\S]*apiBase: http:\/\/127\.0\.0\.1:\d+\/v1/);
      assert.deepStrictEqual(previewDiffs(), [], 'the diff tab is closed after Write');
      const undone = await vscode.commands.executeCommand<{ undone: string }>('poeProxy.undoClientConfiguration', { id: r.changeId, confirm: true });
      assert.strictEqual(undone.undone, r.changeId);
      assert.strictEqual(await fsp.readFile(file, 'utf8'), before);
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      await fsp.rm(home, { recursive: true, force: true });
    }
  });

  it('"Configure Aider" on Discard writes nothing and closes both diff tabs (other editors stay)', async () => {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'poe-lm-home-'));
    const other = path.join(home, 'notes.txt');
    try {
      await fsp.writeFile(other, 'mine\n');
      await vscode.window.showTextDocument(vscode.Uri.file(other), { preview: false });
      let open = 0;
      const r = await vscode.commands.executeCommand<{ outcome: string; files: string[] }>('poeProxy.configureAider', {
        home,
        model: 'GPT-4.1',
        prompt: async () => {
          open = previewDiffs().length;
          return 'Discard';
        },
      });
      assert.strictEqual(open, 2, 'a diff per file (config and model metadata) while asking');
      assert.strictEqual(r.outcome, 'cancelled');
      assert.strictEqual(r.files.length, 2);
      for (const f of r.files) await assert.rejects(fsp.access(f), `${f} was not written`);
      assert.deepStrictEqual(previewDiffs(), [], 'the diff tabs are closed after Discard');
      assert.ok(
        vscode.window.tabGroups.all.flatMap((g) => g.tabs).some((t) => t.input instanceof vscode.TabInputText && t.input.uri.fsPath === other),
        "the user's own editor stays open",
      );
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      await fsp.rm(home, { recursive: true, force: true });
    }
  });

  it('"Update Configured Clients to the Current Port" re-points a configured Codex at the new port (diff, Write, backup), keeping its model; Undo restores', async () => {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'poe-lm-home-'));
    const file = path.join(home, '.codex', 'config.toml');
    try {
      const codex = await vscode.commands.executeCommand<{ outcome: string; changeId: string }>('poeProxy.configureCodex', {
        home,
        model: 'GPT-4.1',
        confirm: true,
        preview: false,
      });
      assert.strictEqual(codex.outcome, 'written');
      const configured = await fsp.readFile(file, 'utf8');
      assert.ok(configured.includes(`http://127.0.0.1:${port}/v1`), configured);
      const next = await freePort();
      let shown = 0;
      const results = await vscode.commands.executeCommand<Array<{ client: string; outcome: string; files: string[]; changeId?: string }>>(
        'poeProxy.updateClientPorts',
        {
          port: next,
          prompt: async (message: string) => {
            if (!message.includes('Codex')) return 'Discard';
            shown = previewDiffs().filter((d) => d.modified.path === file).length;
            assert.match(message, new RegExp(`http://127\\.0\\.0\\.1:${port} becomes http://127\\.0\\.0\\.1:${next}`));
            return 'Write';
          },
        },
      );
      const mine = results.find((r) => r.client === 'codex');
      assert.ok(mine, JSON.stringify(results));
      assert.strictEqual(mine.outcome, 'written');
      assert.strictEqual(shown, 1, 'the diff was shown while asking');
      assert.deepStrictEqual(previewDiffs(), [], 'and closed afterwards');
      assert.strictEqual(await fsp.readFile(file, 'utf8'), configured.split(`127.0.0.1:${port}`).join(`127.0.0.1:${next}`), 'only the port changed');
      const again = await vscode.commands.executeCommand<Array<{ client: string }>>('poeProxy.updateClientPorts', {
        port: next,
        prompt: async () => 'Discard',
      });
      assert.ok(!again.some((r) => r.client === 'codex'), 'nothing left to update');
      await vscode.commands.executeCommand('poeProxy.undoClientConfiguration', { id: mine.changeId, confirm: true });
      assert.strictEqual(await fsp.readFile(file, 'utf8'), configured);
      await vscode.commands.executeCommand('poeProxy.undoClientConfiguration', { id: codex.changeId, confirm: true });
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      await fsp.rm(home, { recursive: true, force: true });
    }
  });

  it('"Configure Claude Code" writes the model variables Claude Code reads, chosen from the registry, and each one works on /v1/messages', async () => {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'poe-lm-home-'));
    try {
      const r = await vscode.commands.executeCommand<{ outcome: string }>('poeProxy.configureClaudeCode', { home, confirm: true, preview: false });
      assert.strictEqual(r.outcome, 'written');
      const env = JSON.parse(await fsp.readFile(path.join(home, '.claude', 'settings.json'), 'utf8')).env as Record<string, string>;
      assert.strictEqual(env.ANTHROPIC_BASE_URL, `http://127.0.0.1:${port}`);
      // The bundled registry's newest Claude models are proposed, written as Anthropic's ids (the form Claude Code recognises).
      assert.strictEqual(env.ANTHROPIC_MODEL, 'claude-sonnet-4-6');
      assert.strictEqual(env.ANTHROPIC_DEFAULT_OPUS_MODEL, 'claude-opus-4-7');
      assert.strictEqual(env.ANTHROPIC_DEFAULT_SONNET_MODEL, 'claude-sonnet-4-6');
      assert.strictEqual(env.ANTHROPIC_DEFAULT_HAIKU_MODEL, 'claude-haiku-4-5');
      assert.strictEqual(env.ANTHROPIC_SMALL_FAST_MODEL, 'claude-haiku-4-5');
      const poeNames: Record<string, string> = {
        ANTHROPIC_MODEL: 'Claude-Sonnet-4.6',
        ANTHROPIC_DEFAULT_OPUS_MODEL: 'Claude-Opus-4.7',
        ANTHROPIC_DEFAULT_SONNET_MODEL: 'Claude-Sonnet-4.6',
        ANTHROPIC_DEFAULT_HAIKU_MODEL: 'Claude-Haiku-4.5',
      };
      for (const name of Object.keys(poeNames)) {
        const res = await fetch(`${env.ANTHROPIC_BASE_URL}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${env.ANTHROPIC_AUTH_TOKEN}`, 'anthropic-version': '2023-06-01' },
          body: JSON.stringify({ model: env[name], max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
        });
        assert.strictEqual(res.status, 200, `${name}=${env[name]}: ${await res.text()}`);
        // The last /v1/messages request: the reconciler may have asked points_history since.
        const sent = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/messages').at(-1);
        assert.strictEqual(sent?.body.model, poeNames[name], `${name} reaches the Poe bot that was chosen`);
      }
      const chosen = await vscode.commands.executeCommand<{ outcome: string }>('poeProxy.configureClaudeCode', {
        home,
        confirm: true,
        preview: false,
        claudeCode: { main: 'Claude-Opus-4.7' },
      });
      assert.strictEqual(chosen.outcome, 'written');
      const env2 = JSON.parse(await fsp.readFile(path.join(home, '.claude', 'settings.json'), 'utf8')).env as Record<string, string>;
      assert.strictEqual(env2.ANTHROPIC_MODEL, 'claude-opus-4-7');
      assert.strictEqual(env2.ANTHROPIC_DEFAULT_SONNET_MODEL, 'claude-sonnet-4-6', 'the roles not given keep the proposal');
      await vscode.commands.executeCommand('poeProxy.undoClientConfiguration', { confirm: true });
      await vscode.commands.executeCommand('poeProxy.undoClientConfiguration', { confirm: true });
      await assert.rejects(fsp.stat(path.join(home, '.claude', 'settings.json')));
    } finally {
      await fsp.rm(home, { recursive: true, force: true });
    }
  });

  it('"Configure Codex" and "Configure Aider" write into HOME, re-runs change nothing, Undo restores exactly', async () => {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'poe-lm-home-'));
    try {
      const aiderConf = path.join(home, '.aider.conf.yml');
      await fsp.writeFile(aiderConf, '# mine\ndark-mode: true\n');
      const codex = await vscode.commands.executeCommand<{ outcome: string; files: string[] }>('poeProxy.configureCodex', {
        home,
        model: 'GPT-4.1',
        confirm: true,
        preview: false,
      });
      assert.strictEqual(codex.outcome, 'written');
      const toml = await fsp.readFile(path.join(home, '.codex', 'config.toml'), 'utf8');
      assert.match(toml, new RegExp(`base_url = "http://127\\.0\\.0\\.1:${port}/v1"`));
      assert.match(toml, /wire_api = "responses"/);
      const again = await vscode.commands.executeCommand<{ outcome: string }>('poeProxy.configureCodex', {
        home,
        model: 'GPT-4.1',
        confirm: true,
        preview: false,
      });
      assert.strictEqual(again.outcome, 'unchanged');

      const aider = await vscode.commands.executeCommand<{ outcome: string; files: string[] }>('poeProxy.configureAider', {
        home,
        model: 'GPT-4.1',
        confirm: true,
        preview: false,
      });
      assert.deepStrictEqual(aider.files.sort(), [aiderConf, path.join(home, '.aider.model.metadata.json')].sort());
      assert.match(await fsp.readFile(aiderConf, 'utf8'), /dark-mode: true[\s\S]*model: openai\/GPT-4\.1/);

      const u1 = await vscode.commands.executeCommand<{ restored: string[]; deleted: string[] }>('poeProxy.undoClientConfiguration', { confirm: true });
      assert.deepStrictEqual(u1.restored, [aiderConf], 'the newest change (Aider) first');
      assert.strictEqual(await fsp.readFile(aiderConf, 'utf8'), '# mine\ndark-mode: true\n');
      await assert.rejects(fsp.stat(path.join(home, '.aider.model.metadata.json')));
      const u2 = await vscode.commands.executeCommand<{ deleted: string[] }>('poeProxy.undoClientConfiguration', { confirm: true });
      assert.deepStrictEqual(u2.deleted, [path.join(home, '.codex', 'config.toml')]);
      await assert.rejects(fsp.stat(path.join(home, '.codex', 'config.toml')));
    } finally {
      await fsp.rm(home, { recursive: true, force: true });
    }
  });
});
