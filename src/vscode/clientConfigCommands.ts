/**
 * "Poe: Configure Claude Code / Codex / Continue / Aider" and "Poe: Undo Client Configuration": the
 * planners in clientConfig.ts behind a preview (a diff per file, with Write/Discard in a
 * notification that leaves the diff visible; the diff tabs close afterwards) and a backup in the
 * extension's storage that Undo restores exactly.
 *
 * Arguments (for tests and scripts; the same checks apply): configure commands take
 * `{ home?, model?, claudeCode?, confirm?: boolean, preview?: boolean, prompt? }` — `confirm: true` writes
 * without asking (Claude Code: the proposed models, or those of `claudeCode`), `preview: false` opens no
 * diff, `prompt` replaces the Write/Discard notification (called while the diff is open); undo takes
 * `{ id?, confirm?: boolean }`; Update Configured Clients to the Current Port takes the configure options
 * and `port` (default: the setting).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  applyPlan,
  CLAUDE_CODE_MODEL_ENV,
  claudeCodeModelId,
  claudeModels,
  CLIENT_NAMES,
  defaultModel,
  listChanges,
  planClientFromDisk,
  planIsNoop,
  planRepointsFromDisk,
  proposeClaudeCodeModels,
  undoChange,
  type ChangeRecord,
  type ClaudeCodeModels,
  type ClaudeCodeRole,
  type ClientId,
  type ClientModel,
  type ClientPlan,
} from './clientConfig';
import type { Ctx } from './ctx';
import { registerCommand } from './registration';
import { describePrice } from './modelsYaml';

export const CONFIGURE_COMMANDS: Record<string, ClientId> = {
  'poeProxy.configureClaudeCode': 'claude-code',
  'poeProxy.configureCodex': 'codex',
  'poeProxy.configureContinue': 'continue',
  'poeProxy.configureAider': 'aider',
};
export const UNDO_COMMAND = 'poeProxy.undoClientConfiguration';
/** Re-points the clients a configure command set up at the proxy's current port. */
export const UPDATE_PORTS_COMMAND = 'poeProxy.updateClientPorts';

const PREVIEW_SCHEME = 'poe-proxy-preview';

interface ConfigureArgs {
  home?: string;
  model?: string;
  /** Claude Code's models (any left out: the proposed one). */
  claudeCode?: Partial<ClaudeCodeModels>;
  confirm?: boolean;
  preview?: boolean;
  /** Update Client Ports: the port to point at (default: the poeProxy.port setting). */
  port?: number;
  /** Stands in for the Write/Discard notification (tests): gets its message and buttons, returns the pick. */
  prompt?: WritePrompt;
}

/** Asks whether to write; undefined (notification dismissed) counts as Discard. */
export type WritePrompt = (message: string, ...actions: Array<'Write' | 'Discard'>) => Thenable<'Write' | 'Discard' | undefined>;

export interface ConfigureResult {
  client: ClientId;
  /** written: files changed; unchanged: already configured; cancelled: the user said no. */
  outcome: 'written' | 'unchanged' | 'cancelled';
  files: string[];
  changeId?: string;
}

/** Read-only documents holding the before/after texts the diff shows. */
class PreviewDocs implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private seq = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }

  uri(file: string, side: 'before' | 'after', text: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: file, query: `${side}-${++this.seq}` });
    this.texts.set(uri.toString(), text);
    return uri;
  }
}

export function registerClientConfigCommands(ctx: Ctx): vscode.Disposable[] {
  const docs = new PreviewDocs();
  const run = <T>(id: string, fn: (arg: unknown) => Promise<T>): vscode.Disposable => registerCommand(ctx.logger, id, (arg) => fn(arg));
  return [
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, docs),
    ...Object.entries(CONFIGURE_COMMANDS).map(([id, client]) => run(id, (arg) => configure(ctx, docs, client, (arg ?? {}) as ConfigureArgs))),
    run(UNDO_COMMAND, (arg) => undo(ctx, (arg ?? {}) as { id?: string; confirm?: boolean })),
    run(UPDATE_PORTS_COMMAND, (arg) => updateClientPorts(ctx, docs, (arg ?? {}) as ConfigureArgs)),
  ];
}

function backupDir(ctx: Ctx): string {
  return path.join(ctx.extension.globalStorageUri.fsPath, 'client-config-backups');
}

/** The URL clients should use: the proxy serving this window, else the configured port. */
function proxyUrl(ctx: Ctx): string {
  return ctx.controller.state.url ?? configuredUrl(ctx, ctx.config.port);
}

/** The proxy's URL on `port` (a wildcard host is reached on loopback). */
function configuredUrl(ctx: Ctx, port: number): string {
  const host = ctx.config.host === '0.0.0.0' || ctx.config.host === '::' ? '127.0.0.1' : ctx.config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The clients whose configure-command files still point at another port than `port`. */
export async function clientsOnAnotherPort(ctx: Ctx, port: number): Promise<ClientId[]> {
  return (await planRepointsFromDisk(backupDir(ctx), configuredUrl(ctx, port))).map((p) => p.client);
}

/**
 * Each client a configure command pointed at another port: the same diff, Write/Discard and backup
 * (Undo restores) as configuring, changing only the proxy's URL (the port setting is what counts, not a
 * proxy still being restarted on the old port).
 */
async function updateClientPorts(ctx: Ctx, docs: PreviewDocs, args: ConfigureArgs): Promise<ConfigureResult[]> {
  const port = args.port ?? ctx.config.port;
  const plans = await planRepointsFromDisk(backupDir(ctx), configuredUrl(ctx, port));
  if (plans.length === 0 && !args.confirm) void vscode.window.showInformationMessage(`Poe: no configured client points at another port than ${port}.`);
  const results: ConfigureResult[] = [];
  for (const plan of plans) results.push(await writePlan(ctx, docs, plan, args));
  return results;
}

async function textModels(ctx: Ctx): Promise<ClientModel[]> {
  const registry = await ctx.engine.registry();
  const config = ctx.engine.core.config;
  return registry.models
    .filter((m) => m.modality === 'text')
    .map((m) => ({
      id: m.id,
      contextLength: registry.contextLimit(m, config.contextLimit),
      maxOutputTokens: m.maxOutputTokens,
      base: m.base,
      per1kTokens: m.per1kTokens,
      tools: m.tools,
    }));
}

async function pickModel(client: ClientId, models: ClientModel[]): Promise<string | undefined> {
  // Coding agents need tool calling: those models first.
  const sorted = [...models].sort((a, b) => Number(Boolean(b.tools)) - Number(Boolean(a.tools)));
  const picked = await vscode.window.showQuickPick(
    sorted.map((m) => ({
      label: m.id,
      description: m.tools ? 'tools' : undefined,
      detail: `${m.contextLength.toLocaleString('en-US')}-token context · ${describePrice(m)}`,
    })),
    { title: `Poe: model for ${CLIENT_NAMES[client]}`, placeHolder: 'The default model the client will use' },
  );
  return picked?.label;
}

const CLAUDE_ROLES: Array<{ role: ClaudeCodeRole; what: string }> = [
  { role: 'main', what: 'main model' },
  { role: 'opus', what: '"opus" model (hard tasks, plan mode)' },
  { role: 'sonnet', what: '"sonnet" model (everyday coding)' },
  { role: 'haiku', what: '"haiku" model (quick background tasks)' },
];

/**
 * Claude Code's models, chosen from the registry's Claude models: one QuickPick offers the proposed
 * set (newest Opus, Sonnet, Haiku), or choosing each role with the proposal preselected. Undefined:
 * cancelled.
 */
async function pickClaudeCodeModels(models: ClientModel[], proposed: ClaudeCodeModels): Promise<ClaudeCodeModels | undefined> {
  const summary = CLAUDE_ROLES.map(({ role }) => `${role} ${proposed[role]}`).join(' · ');
  const how = await vscode.window.showQuickPick(
    [
      { label: '$(check) Use the proposed models', detail: summary, choose: false },
      { label: '$(list-selection) Choose each model…', detail: 'main, opus, sonnet and haiku, from the Claude models of the registry', choose: true },
    ],
    { title: 'Poe: models for Claude Code', placeHolder: 'Claude Code asks for a main model and for what "opus", "sonnet" and "haiku" mean' },
  );
  if (!how) return undefined;
  if (!how.choose) return proposed;
  const claude = claudeModels(models);
  const chosen = { ...proposed };
  for (const { role, what } of CLAUDE_ROLES) {
    const items = claude.map((m) => ({
      label: m.id,
      description: `${m.id === proposed[role] ? 'proposed · ' : ''}written as ${claudeCodeModelId(m.id)}`,
      detail: `${m.contextLength.toLocaleString('en-US')}-token context · ${describePrice(m)}`,
    }));
    items.sort((a, b) => Number(b.label === proposed[role]) - Number(a.label === proposed[role]));
    const picked = await vscode.window.showQuickPick(items, {
      title: `Poe: Claude Code's ${what}`,
      placeHolder: `Sets ${CLAUDE_CODE_MODEL_ENV[role].join(' and ')}`,
    });
    if (!picked) return undefined;
    chosen[role] = picked.label;
  }
  return chosen;
}

async function configure(ctx: Ctx, docs: PreviewDocs, client: ClientId, args: ConfigureArgs): Promise<ConfigureResult> {
  const name = CLIENT_NAMES[client];
  const models = await textModels(ctx);
  let model = args.model;
  if (!model && (client === 'codex' || client === 'aider') && !args.confirm) {
    model = await pickModel(client, models);
    if (!model) return { client, outcome: 'cancelled', files: [] };
  }
  let claudeCode: ClaudeCodeModels | undefined;
  const proposed = client === 'claude-code' ? proposeClaudeCodeModels(models) : undefined;
  if (proposed) {
    claudeCode = args.claudeCode || args.confirm ? { ...proposed, ...args.claudeCode } : await pickClaudeCodeModels(models, proposed);
    if (!claudeCode) return { client, outcome: 'cancelled', files: [] };
  }
  let accessKey: string | undefined;
  if (ctx.config.accessKeyRequired) accessKey = ctx.keys.localAccessKey ?? (await ctx.keys.generateAccessKey());
  const opts = {
    home: args.home ?? os.homedir(),
    proxyUrl: proxyUrl(ctx),
    accessKey,
    models,
    model: model ?? defaultModel({ home: '', proxyUrl: '', models }),
    claudeCode,
  };
  const plan = await planClientFromDisk(client, opts);
  if (planIsNoop(plan)) {
    if (!args.confirm) void vscode.window.showInformationMessage(`Poe: ${name} is already configured for this proxy; nothing to change.`);
    return { client, outcome: 'unchanged', files: [] };
  }
  return writePlan(ctx, docs, plan, args);
}

/** Shows the plan's diffs, asks Write/Discard (unless confirmed), writes with a backup, closes the diffs. */
async function writePlan(ctx: Ctx, docs: PreviewDocs, plan: ClientPlan, args: ConfigureArgs): Promise<ConfigureResult> {
  const client = plan.client;
  const name = CLIENT_NAMES[client];
  const files = plan.edits.filter((e) => e.before !== e.after).map((e) => e.path);
  const previews = args.preview !== false ? await showDiffs(docs, plan, name) : [];
  let record: ChangeRecord | undefined;
  try {
    if (!args.confirm && !(await ask(plan, name, args.prompt))) return { client, outcome: 'cancelled', files };
    record = await applyPlan(plan, backupDir(ctx));
  } finally {
    await closePreviews(previews);
  }
  ctx.logger.info(`configured ${name}: wrote ${files.join(', ')} (undo: "Poe: Undo Client Configuration")`);
  if (!args.confirm) {
    void vscode.window.showInformationMessage(`Poe: ${name} now uses the proxy (${countFiles(files.length)} written).`, 'Undo').then((a) => {
      if (a && record) void vscode.commands.executeCommand(UNDO_COMMAND, { id: record.id, confirm: true });
    });
  }
  return { client, outcome: 'written', files, changeId: record?.id };
}

const countFiles = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;

/** Opens a diff per changed file; returns the planned-side URIs, to close those tabs afterwards. */
async function showDiffs(docs: PreviewDocs, plan: ClientPlan, name: string): Promise<vscode.Uri[]> {
  const shown: vscode.Uri[] = [];
  for (const e of plan.edits) {
    if (e.before === e.after) continue;
    const left = docs.uri(e.path, 'before', e.before ?? '');
    const right = docs.uri(e.path, 'after', e.after);
    const title = `${path.basename(e.path)}: ${e.before === null ? 'new file' : 'current ↔ planned'} (Poe: ${name})`;
    await vscode.commands.executeCommand('vscode.diff', left, right, title, { preview: false, preserveFocus: true });
    shown.push(right);
  }
  return shown;
}

/** Closes the diff tabs of this preview (wherever the user moved them), and only those. */
async function closePreviews(planned: vscode.Uri[]): Promise<void> {
  if (planned.length === 0) return;
  const ours = new Set(planned.map((u) => u.toString()));
  const tabs = vscode.window.tabGroups.all
    .flatMap((g) => g.tabs)
    .filter((t) => t.input instanceof vscode.TabInputTextDiff && ours.has(t.input.modified.toString()));
  if (tabs.length) await vscode.window.tabGroups.close(tabs, true);
}

/**
 * Write/Discard in a notification, not a modal: a modal dialog would cover the diff it asks about.
 * The notification shows one line, so the files and notes come first in it.
 */
async function ask(plan: ClientPlan, name: string, prompt?: WritePrompt): Promise<boolean> {
  const lines = plan.edits.filter((e) => e.before !== e.after).map((e) => `${e.before === null ? 'create' : 'change'} ${e.path}`);
  const message = [
    `Configure ${name} to use the Poe proxy: ${lines.join(', ')}?`,
    ...plan.notes,
    'A backup is kept ("Poe: Undo Client Configuration" restores the files).',
  ].join(' ');
  const show: WritePrompt = prompt ?? ((m, ...actions) => vscode.window.showInformationMessage(m, ...actions));
  return (await show(message, 'Write', 'Discard')) === 'Write';
}

function describeChange(c: ChangeRecord): string {
  return `${CLIENT_NAMES[c.client]} — ${new Date(c.time).toLocaleString()}`;
}

async function undo(ctx: Ctx, args: { id?: string; confirm?: boolean }): Promise<{ undone?: string; restored: string[]; deleted: string[] }> {
  const dir = backupDir(ctx);
  const changes = await listChanges(dir);
  if (changes.length === 0) {
    if (!args.confirm) void vscode.window.showInformationMessage('Poe: no client configuration to undo.');
    return { restored: [], deleted: [] };
  }
  let target: ChangeRecord | undefined = args.id ? changes.find((c) => c.id === args.id) : undefined;
  if (args.id && !target) throw new Error(`No client configuration change ${args.id} to undo (already undone?).`);
  if (!target) {
    if (args.confirm) target = changes[0];
    else {
      const picked = await vscode.window.showQuickPick(
        changes.map((c) => ({ label: describeChange(c), detail: c.files.map((f) => f.path).join(', '), change: c })),
        { title: 'Poe: Undo Client Configuration', placeHolder: 'Restore these files to what they held before the change' },
      );
      target = picked?.change;
    }
  }
  if (!target) return { restored: [], deleted: [] };
  // A newer change of the same file would be lost silently: undo that one first.
  const newer = changes.slice(0, changes.indexOf(target)).find((c) => c.files.some((f) => target!.files.some((t) => t.path === f.path)));
  if (newer) throw new Error(`${describeChange(newer)} changed the same file later; undo that change first.`);
  const result = await undoChange(dir, target);
  const note = result.modifiedSince.length ? ` Edits made since then to ${result.modifiedSince.join(', ')} were replaced.` : '';
  ctx.logger.info(`undid ${describeChange(target)}: restored ${result.restored.join(', ') || '-'}, deleted ${result.deleted.join(', ') || '-'}`);
  if (!args.confirm) void vscode.window.showInformationMessage(`Poe: ${CLIENT_NAMES[target.client]} configuration undone.${note}`);
  return { undone: target.id, restored: result.restored, deleted: result.deleted };
}
