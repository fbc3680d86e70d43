/**
 * The "Poe: …" commands. Each is a thin call into the Ctx's services. Some accept an argument so tests
 * and scripts can run them without UI (the same checks apply): `poeProxy.setApiKey` takes the key,
 * `poeProxy.pickModels` takes the model ids, `poeProxy.changePort` takes the port,
 * `poeProxy.generateAccessKey` takes `true` to replace an existing key without asking.
 */
import * as vscode from 'vscode';
import { CLIENT_NAMES } from './clientConfig';
import { formatPoints } from '../core/exchange/footer';
import { registerSecret } from '../core/log';
import { clientsOnAnotherPort, UPDATE_PORTS_COMMAND } from './clientConfigCommands';
import type { Ctx } from './ctx';
import { HistoryPanel } from './historyPanel';
import { checkPoeKey, type KeyCheck } from './keyStore';
import { pickModels } from './modelPicker';
import { ACTIONS, type FixAction } from './notify';
import { registerCommand } from './registration';
import { describe } from './statusBar';

export const COMMAND_IDS = [
  'poeProxy.start',
  'poeProxy.stop',
  'poeProxy.restart',
  'poeProxy.setApiKey',
  'poeProxy.clearApiKey',
  'poeProxy.pickModels',
  'poeProxy.showHistory',
  'poeProxy.copyBaseUrl',
  'poeProxy.refreshBalance',
  'poeProxy.showLogs',
  'poeProxy.openModelsFile',
  'poeProxy.generateAccessKey',
  'poeProxy.copyAccessKey',
  'poeProxy.changePort',
  'poeProxy.showMenu',
  'poeProxy.configureClient',
  'poeProxy.openWalkthrough',
] as const;

/** The walkthrough's id for `workbench.action.openWalkthrough` (publisher.name#id). */
export const WALKTHROUGH_ID = 'poe-proxy.poe-proxy-vscode#poeProxy.gettingStarted';

/** The tools a configure command can set up, in the order the pickers list them. */
export const CONFIGURABLE_CLIENTS: ReadonlyArray<{ command: string; name: string }> = [
  { command: 'poeProxy.configureClaudeCode', name: 'Claude Code' },
  { command: 'poeProxy.configureCodex', name: 'Codex' },
  { command: 'poeProxy.configureContinue', name: 'Continue' },
  { command: 'poeProxy.configureAider', name: 'Aider' },
];

export type CommandId = (typeof COMMAND_IDS)[number];

export function registerCommands(ctx: Ctx): vscode.Disposable[] {
  const handlers: Record<CommandId, (...args: unknown[]) => unknown> = {
    'poeProxy.start': () => start(ctx),
    'poeProxy.stop': () => ctx.controller.stopEverywhere(),
    'poeProxy.restart': () => ctx.controller.restart(),
    'poeProxy.setApiKey': (key) => setApiKey(ctx, typeof key === 'string' ? key : undefined),
    'poeProxy.clearApiKey': () => clearApiKey(ctx),
    'poeProxy.pickModels': async (ids) => {
      const picked = await pickModels(ctx.pickerDeps, Array.isArray(ids) ? ids.filter((i): i is string => typeof i === 'string') : undefined);
      ctx.lm.invalidate(); // Copilot Chat's model list follows the picks
      return picked;
    },
    'poeProxy.showHistory': () => HistoryPanel.show(ctx.extensionUri, ctx.ledger),
    'poeProxy.copyBaseUrl': () => copyBaseUrl(ctx),
    'poeProxy.refreshBalance': () => refreshBalance(ctx),
    'poeProxy.showLogs': () => ctx.logger.show(),
    'poeProxy.openModelsFile': () => openModelsFile(ctx),
    'poeProxy.generateAccessKey': (force) => generateAccessKey(ctx, force === true),
    'poeProxy.copyAccessKey': () => copyAccessKey(ctx),
    'poeProxy.changePort': (port) => changePort(ctx, typeof port === 'number' ? port : undefined),
    'poeProxy.showMenu': () => showMenu(ctx),
    'poeProxy.configureClient': () => configureClient(),
    'poeProxy.openWalkthrough': () => vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false),
  };
  return COMMAND_IDS.map((id) => registerCommand(ctx.logger, id, handlers[id]));
}

async function start(ctx: Ctx): Promise<void> {
  await ctx.controller.startEverywhere();
  if (!ctx.keys.poeKey && ctx.controller.state.kind === 'running') {
    void vscode.window.showWarningMessage('Poe proxy is running but has no Poe API key: requests will fail until you set one.', 'Set API Key').then((a) => {
      if (a) void vscode.commands.executeCommand('poeProxy.setApiKey');
    });
  }
}

/**
 * Asks for the key (password box) unless given, checks it against Poe's balance endpoint with the
 * configured base URL, and stores it only when Poe accepts it.
 */
export async function setApiKey(ctx: Ctx, given?: string, typed?: string): Promise<KeyCheck> {
  let key = given?.trim();
  if (!key) {
    key = (
      await vscode.window.showInputBox({
        title: 'Poe: Set API Key',
        prompt: "Your Poe API key (https://poe.com/api_key). It is checked with Poe, then kept in VS Code's secret storage — never in settings.",
        placeHolder: 'Paste the key',
        value: typed,
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() === '' ? 'Paste the key' : /\s/.test(v.trim()) ? 'The key has no spaces' : undefined),
      })
    )?.trim();
    if (!key) return { ok: false, message: 'cancelled' };
  }
  registerSecret(key);
  const candidate = key;
  const check = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Poe: checking the key…' }, () =>
    checkPoeKey(ctx.config.baseUrl, candidate),
  );
  if (!check.ok) {
    ctx.logger.warn(`API key not stored: ${check.message}`);
    // Try Again keeps what was typed; when Poe cannot be reached the key may well be right: offer to keep it.
    const tryAgain: FixAction = { title: 'Try Again', run: () => setApiKey(ctx, undefined, candidate) };
    const saveAnyway: FixAction = { title: 'Save Anyway', run: () => storeKey(ctx, candidate, undefined) };
    void ctx.notifier.show(
      'error',
      `Poe: the key was not stored. ${check.message}`,
      ...(check.unreachable ? [saveAnyway, ACTIONS.baseUrlSetting, tryAgain] : [tryAgain, ACTIONS.getKey]),
    );
    return check;
  }
  await storeKey(ctx, candidate, check.balance);
  return check;
}

/** Stores the key and offers the next step (balance undefined: saved without Poe's check). */
async function storeKey(ctx: Ctx, key: string, balance: number | undefined): Promise<void> {
  await ctx.keys.setPoeKey(key);
  ctx.logger.info(
    balance === undefined ? 'API key stored without a check (Poe could not be reached)' : `API key stored (balance ${formatPoints(balance)} points)`,
  );
  const stored =
    balance === undefined
      ? 'Poe: API key stored without a check; the status bar shows when Poe answers.'
      : `Poe: API key stored. Balance: ${formatPoints(balance)} points.`;
  void ctx.notifier.show('info', `${stored} Next: point a tool at the proxy.`, ACTIONS.copyBaseUrl, ACTIONS.configureClient, ACTIONS.walkthrough);
}

async function clearApiKey(ctx: Ctx): Promise<void> {
  await ctx.keys.clearPoeKey();
  ctx.logger.info('API key cleared');
  void vscode.window.showInformationMessage('Poe: API key removed from this machine’s VS Code secret storage.', 'Set API Key').then((a) => {
    if (a) void vscode.commands.executeCommand('poeProxy.setApiKey');
  });
}

function baseUrl(ctx: Ctx): string | undefined {
  const url = ctx.controller.state.url;
  return url ? `${url}/v1` : undefined;
}

async function copyBaseUrl(ctx: Ctx): Promise<string | undefined> {
  const url = baseUrl(ctx);
  if (!url) {
    void vscode.window.showWarningMessage('Poe proxy is not running.', 'Start').then((a) => {
      if (a) void vscode.commands.executeCommand('poeProxy.start');
    });
    return undefined;
  }
  await vscode.env.clipboard.writeText(url);
  void vscode.window.showInformationMessage(
    `Copied ${url} — use it as the OpenAI base URL${ctx.config.accessKeyRequired ? ' (with your access key as the API key)' : ''}.`,
  );
  return url;
}

async function refreshBalance(ctx: Ctx): Promise<number | undefined> {
  if (!ctx.keys.poeKey) {
    void ctx.notifier.show('warning', 'Poe: no API key set.', ACTIONS.setKey, ACTIONS.getKey);
    return undefined;
  }
  const value = await ctx.balance.refresh(true);
  const problem = ctx.balance.problem;
  if (value === undefined) {
    // The reason a client of the proxy would get, with the action that fixes it.
    const actions =
      problem?.kind === 'key-rejected'
        ? [ACTIONS.setKey, ACTIONS.getKey]
        : problem?.kind === 'unreachable'
          ? [ACTIONS.retry, ACTIONS.baseUrlSetting, ACTIONS.logs]
          : [ACTIONS.retry, ACTIONS.logs];
    void ctx.notifier.show(
      problem?.kind === 'key-rejected' ? 'error' : 'warning',
      `Poe: could not fetch the balance. ${problem?.message ?? 'See the logs.'}`,
      ...actions,
    );
  }
  return value;
}

async function openModelsFile(ctx: Ctx): Promise<void> {
  const file = ctx.effectiveModelsFile();
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  await vscode.window.showTextDocument(doc, { preview: false });
  if (file === ctx.bundledModelsFile) {
    void vscode.window.showInformationMessage(
      'This is the models.yaml bundled with the extension (replaced on update). Use "Poe: Pick Models" to choose models, or point poeProxy.modelsFile at your own copy.',
    );
  }
}

async function generateAccessKey(ctx: Ctx, force: boolean): Promise<string | undefined> {
  if (ctx.keys.localAccessKey && !force) {
    const a = await vscode.window.showWarningMessage(
      'Replace the local access key? Clients using the current one will be refused.',
      { modal: true },
      'Replace',
    );
    if (a !== 'Replace') return undefined;
  }
  const key = await ctx.keys.generateAccessKey();
  await vscode.env.clipboard.writeText(key);
  const active = ctx.config.accessKeyRequired;
  void vscode.window
    .showInformationMessage(
      `Poe: new access key copied to the clipboard.${active ? ' Clients must send it as their API key.' : ' It is not required yet: turn on poeProxy.requireAccessKey to require it.'}`,
      ...(active ? [] : ['Require It']),
    )
    .then((a) => {
      if (a) void ctx.config.setGlobal('requireAccessKey', true);
    });
  return key;
}

async function copyAccessKey(ctx: Ctx): Promise<boolean> {
  const key = ctx.keys.localAccessKey;
  if (!key) {
    void vscode.window.showInformationMessage('Poe: no access key yet.', 'Generate Access Key').then((a) => {
      if (a) void vscode.commands.executeCommand('poeProxy.generateAccessKey');
    });
    return false;
  }
  await vscode.env.clipboard.writeText(key);
  void vscode.window.showInformationMessage('Poe: access key copied to the clipboard.');
  return true;
}

async function changePort(ctx: Ctx, given?: number): Promise<number | undefined> {
  let port = given;
  if (port === undefined) {
    const current = ctx.config.port;
    const raw = await vscode.window.showInputBox({
      title: 'Poe: Use Another Port',
      prompt: 'Port for the local proxy (saved in your user settings as poeProxy.port)',
      value: String(current === 65535 ? current - 1 : current + 1),
      validateInput: (v) => {
        const n = Number(v);
        return Number.isInteger(n) && n >= 1024 && n <= 65535 ? undefined : 'A whole number from 1024 to 65535';
      },
    });
    if (raw === undefined) return undefined;
    port = Number(raw);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${port} is not a valid port`);
  const old = ctx.config.port;
  await ctx.config.setGlobal('port', port);
  if (port !== old && given === undefined) void offerClientUpdate(ctx, old, port);
  return port;
}

/** Clients a configure command pointed at the old port would stop working: offer to update them. */
async function offerClientUpdate(ctx: Ctx, old: number, port: number): Promise<void> {
  const clients = await clientsOnAnotherPort(ctx, port);
  if (clients.length === 0) return;
  const names = clients.map((c) => CLIENT_NAMES[c]).join(', ');
  const picked = await vscode.window.showInformationMessage(
    `Poe: ${names} ${clients.length === 1 ? 'was' : 'were'} configured for port ${old}. Update to ${port}?`,
    'Update Clients',
  );
  if (picked) await vscode.commands.executeCommand(UPDATE_PORTS_COMMAND, { port });
}

/** Which tool to point at the proxy: runs that tool's configure command. */
async function configureClient(): Promise<unknown> {
  const items = [
    ...CONFIGURABLE_CLIENTS.map((c) => ({ label: c.name, detail: 'Shows the changes to its settings files before writing', command: c.command })),
    { label: 'Another OpenAI-compatible tool', detail: 'Copies the base URL to paste into its settings', command: 'poeProxy.copyBaseUrl' },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'Poe: Configure a Client', placeHolder: 'Which tool should use Poe through the proxy?' });
  return picked ? vscode.commands.executeCommand(picked.command) : undefined;
}

interface MenuItem extends vscode.QuickPickItem {
  /** One of COMMAND_IDS, or another poeProxy.* command (the client configuration ones). */
  command?: string;
}

async function showMenu(ctx: Ctx): Promise<void> {
  const s = ctx.controller.state;
  const hasKey = Boolean(ctx.keys.poeKey);
  const serving = s.kind === 'running';
  const items: MenuItem[] = [];
  const add = (command: CommandId, label: string, detail?: string): void => {
    items.push({ label, detail, command });
  };
  if (!hasKey) add('poeProxy.setApiKey', '$(key) Set API Key', 'Needed before the proxy can call Poe');
  if (s.url) add('poeProxy.copyBaseUrl', '$(copy) Copy Base URL', `${s.url}/v1`);
  add('poeProxy.showHistory', '$(graph) Show Cost History');
  if (hasKey) add('poeProxy.refreshBalance', '$(refresh) Refresh Balance');
  add('poeProxy.pickModels', '$(list-selection) Pick Models');
  items.push({ label: 'Proxy', kind: vscode.QuickPickItemKind.Separator });
  if (serving) {
    add('poeProxy.restart', '$(debug-restart) Restart Proxy');
    add('poeProxy.stop', '$(debug-stop) Stop Proxy');
  } else {
    add('poeProxy.start', '$(play) Start Proxy', s.kind === 'external' ? 'Another window serves the port; starting retries' : undefined);
  }
  add('poeProxy.changePort', '$(plug) Use Another Port');
  add('poeProxy.openModelsFile', '$(file-code) Open Models File');
  add('poeProxy.showLogs', '$(output) Show Logs');
  items.push({ label: 'Clients', kind: vscode.QuickPickItemKind.Separator });
  for (const { command, name } of CONFIGURABLE_CLIENTS) {
    items.push({ label: `$(settings-gear) Configure ${name}`, detail: 'Shows the changes to its settings files before writing', command });
  }
  items.push({ label: '$(discard) Undo Client Configuration', command: 'poeProxy.undoClientConfiguration' });
  items.push({ label: 'Keys', kind: vscode.QuickPickItemKind.Separator });
  if (hasKey) add('poeProxy.setApiKey', '$(key) Change API Key');
  if (hasKey) add('poeProxy.clearApiKey', '$(trash) Clear API Key');
  add('poeProxy.generateAccessKey', '$(shield) Generate Access Key');
  if (ctx.keys.localAccessKey) add('poeProxy.copyAccessKey', '$(clippy) Copy Access Key');
  const picked = await vscode.window.showQuickPick(items, { title: `Poe Proxy — ${describe(ctx.statusBar.state)}`, placeHolder: 'Choose an action' });
  if (picked?.command) await vscode.commands.executeCommand(picked.command);
}
