/**
 * "Configure client": the settings files of Claude Code, Codex, Continue and Aider that point them at
 * the proxy. Planning is pure (current contents in, planned contents out) so a front end can show the
 * change before anything is written; `applyPlan` keeps a backup that `undoChange` restores exactly.
 * Every planner merges into the existing file: only the keys it owns change, and a second run is a
 * no-op.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isMap, isSeq, parseDocument, type Document } from 'yaml';
import { anthropicIdFor, compareVersions, parseClaudeName, type ClaudeFamily } from '../core/store/registry';

export type ClientId = 'claude-code' | 'codex' | 'continue' | 'aider';
export const CLIENT_IDS: readonly ClientId[] = ['claude-code', 'codex', 'continue', 'aider'];

export const CLIENT_NAMES: Record<ClientId, string> = {
  'claude-code': 'Claude Code',
  codex: 'Codex',
  continue: 'Continue',
  aider: 'Aider',
};

/** A model as the clients need it (from the registry). */
export interface ClientModel {
  id: string;
  /** Context window the proxy enforces, in tokens. */
  contextLength: number;
  maxOutputTokens?: number;
  /** Points per message and per 1k tokens (models.yaml estimates). */
  base: number;
  per1kTokens: number;
  tools?: boolean;
}

export interface PlanOptions {
  home: string;
  /** Root URL of the proxy, without /v1 (e.g. http://127.0.0.1:9876). */
  proxyUrl: string;
  /** The local access key when the proxy requires one. */
  accessKey?: string;
  /** Text models to offer (Continue lists them all, Aider gets metadata for all). */
  models: readonly ClientModel[];
  /** The default model for clients that take one (Codex, Aider); default: the first model with tools, else the first. */
  model?: string;
  /** Claude Code's models; default: `proposeClaudeCodeModels(models)`. */
  claudeCode?: ClaudeCodeModels;
}

/** The models Claude Code uses: its main model and what its `opus`, `sonnet` and `haiku` mean. */
export interface ClaudeCodeModels {
  main: string;
  opus: string;
  sonnet: string;
  haiku: string;
}
export type ClaudeCodeRole = keyof ClaudeCodeModels;

/**
 * The environment variables Claude Code reads for its models (code.claude.com/docs, "Model
 * configuration"); ANTHROPIC_SMALL_FAST_MODEL is the older name of the haiku one, still read.
 */
export const CLAUDE_CODE_MODEL_ENV: Record<ClaudeCodeRole, readonly string[]> = {
  main: ['ANTHROPIC_MODEL'],
  opus: ['ANTHROPIC_DEFAULT_OPUS_MODEL'],
  sonnet: ['ANTHROPIC_DEFAULT_SONNET_MODEL'],
  haiku: ['ANTHROPIC_DEFAULT_HAIKU_MODEL', 'ANTHROPIC_SMALL_FAST_MODEL'],
};

/**
 * The id Claude Code gets for a registry model: Anthropic's (`claude-sonnet-4-6`), which the proxy
 * resolves to that very entry, since Claude Code reads a Poe name such as `Claude-Sonnet-4.6` as the
 * retired Sonnet 4 and warns; a name with no Anthropic form stays as it is.
 */
export function claudeCodeModelId(id: string): string {
  return anthropicIdFor(id) ?? id;
}

/** Claude models only: Claude Code talks to /v1/messages, which serves only Claude models. */
export function claudeModels(models: readonly ClientModel[]): ClientModel[] {
  return models.filter((m) => /^claude/i.test(m.id));
}

/**
 * Sensible defaults from the registry: the newest Opus, Sonnet and Haiku (a missing family borrows
 * the nearest one), and Sonnet as the main model. Undefined when the registry has no Claude model.
 */
export function proposeClaudeCodeModels(models: readonly ClientModel[]): ClaudeCodeModels | undefined {
  const claude = claudeModels(models);
  if (claude.length === 0) return undefined;
  const newest: Partial<Record<ClaudeFamily, { id: string; version: string }>> = {};
  for (const m of claude) {
    const c = parseClaudeName(m.id);
    if (!c) continue;
    const cur = newest[c.family];
    if (!cur || compareVersions(c.version, cur.version) > 0) newest[c.family] = { id: m.id, version: c.version };
  }
  const pick = (...order: ClaudeFamily[]): string => order.map((f) => newest[f]?.id).find(Boolean) ?? claude[0].id;
  const sonnet = pick('sonnet', 'opus', 'haiku');
  return { main: sonnet, opus: pick('opus', 'sonnet', 'haiku'), sonnet, haiku: pick('haiku', 'sonnet', 'opus') };
}

export interface FileEdit {
  path: string;
  /** null: the file does not exist yet (undo deletes it). */
  before: string | null;
  after: string;
}

export interface ClientPlan {
  client: ClientId;
  edits: FileEdit[];
  /** What the user must still know or do (shown with the preview). */
  notes: string[];
}

/** Sent when no access key is required: the clients insist on some key, the proxy ignores it. */
export const PLACEHOLDER_KEY = 'poe-proxy-no-key-needed';
/** Codex reads the bearer token from this environment variable (only when an access key is required). */
export const CODEX_ENV_KEY = 'POE_PROXY_ACCESS_KEY';
/** Continue entries this tool owns are recognised (and replaced on a re-run) by this name prefix. */
export const CONTINUE_NAME_PREFIX = 'Poe: ';

/**
 * Poe sells add-on points at about US$30 per 1,000,000 (poe.com subscription page, 2025), so one point
 * is ~US$0.00003. Aider wants dollars per token: models.yaml's `per_1k_tokens` (points, the same rate
 * for input and output) / 1000 × this. The fixed per-message `base` has no per-token equivalent and is
 * left out, so Aider's figures are a lower bound; the proxy's footer and ledger have the real points.
 */
export const USD_PER_POINT = 30 / 1_000_000;

/** The files a client's configuration touches, so the caller can read them before planning. */
export function clientFiles(client: ClientId, home: string): string[] {
  switch (client) {
    case 'claude-code':
      return [path.join(home, '.claude', 'settings.json')];
    case 'codex':
      return [path.join(home, '.codex', 'config.toml')];
    case 'continue':
      return [path.join(home, '.continue', 'config.yaml')];
    case 'aider':
      return [path.join(home, '.aider.conf.yml'), path.join(home, '.aider.model.metadata.json')];
  }
}

/** Plans a client's edits from the files' current contents (`current[path]`, absent or null = no file). */
export function planClient(client: ClientId, opts: PlanOptions, current: Readonly<Record<string, string | null | undefined>>): ClientPlan {
  const files = clientFiles(client, opts.home);
  const read = (p: string): string | null => current[p] ?? null;
  const key = opts.accessKey ?? PLACEHOLDER_KEY;
  const v1 = `${opts.proxyUrl.replace(/\/+$/, '')}/v1`;
  const model = defaultModel(opts);
  switch (client) {
    case 'claude-code': {
      const [file] = files;
      const claude = opts.claudeCode ?? proposeClaudeCodeModels(opts.models);
      const after = mergeJson(file, read(file), (obj) => {
        const env = objectAt(obj, 'env', file);
        // Claude Code appends /v1/messages itself, so its base URL is the proxy's root.
        env.ANTHROPIC_BASE_URL = opts.proxyUrl.replace(/\/+$/, '');
        env.ANTHROPIC_AUTH_TOKEN = key;
        if (claude)
          for (const role of Object.keys(CLAUDE_CODE_MODEL_ENV) as ClaudeCodeRole[])
            for (const name of CLAUDE_CODE_MODEL_ENV[role]) env[name] = claudeCodeModelId(claude[role]);
      });
      return plan(
        client,
        [{ path: file, before: read(file), after }],
        [
          opts.accessKey
            ? 'ANTHROPIC_AUTH_TOKEN is your local access key.'
            : `No access key is required, so ANTHROPIC_AUTH_TOKEN is a placeholder (${PLACEHOLDER_KEY}).`,
          claude
            ? `Models: main ${claude.main}; opus ${claude.opus}; sonnet ${claude.sonnet}; haiku (background tasks) ${claude.haiku} — written as Anthropic's ids (${claudeCodeModelId(claude.main)}, …), the only form Claude Code recognises; the proxy maps them back to these Poe bots.`
            : 'No Claude model is in the registry, so no model is set: Claude Code works only with Claude models ("Poe: Pick Models" adds them).',
          'Claude Code reads these settings when it starts: restart running sessions.',
        ],
      );
    }
    case 'codex': {
      const [file] = files;
      const after = mergeCodexToml(read(file), { model, baseUrl: v1, envKey: opts.accessKey ? CODEX_ENV_KEY : undefined });
      return plan(
        client,
        [{ path: file, before: read(file), after }],
        [
          opts.accessKey
            ? `Codex sends the key from the environment variable ${CODEX_ENV_KEY}: export ${CODEX_ENV_KEY}=<your access key> ("Poe: Copy Access Key") before starting codex.`
            : 'No access key is required, so Codex sends none.',
          `Codex uses the Responses API (wire_api = "responses") at ${v1}/responses.`,
        ],
      );
    }
    case 'continue': {
      const [file] = files;
      const after = mergeContinueYaml(file, read(file), opts.models, v1, key);
      return plan(
        client,
        [{ path: file, before: read(file), after }],
        [`Adds ${opts.models.length} model(s) named "${CONTINUE_NAME_PREFIX}…"; other models stay. Continue reloads config.yaml by itself.`],
      );
    }
    case 'aider': {
      const [conf, meta] = files;
      const confAfter = mergeYamlKeys(conf, read(conf), { 'openai-api-base': v1, 'openai-api-key': key, model: `openai/${model}` });
      const metaAfter = mergeJson(meta, read(meta), (obj) => {
        for (const m of opts.models) obj[`openai/${m.id}`] = aiderMetadata(m);
      });
      return plan(
        client,
        [
          { path: conf, before: read(conf), after: confAfter },
          { path: meta, before: read(meta), after: metaAfter },
        ],
        [
          'Aider reads .aider.conf.yml and .aider.model.metadata.json from your home folder when it starts. Costs are points converted at ~US$30 per million points, without the per-message base.',
        ],
      );
    }
  }
}

function plan(client: ClientId, edits: FileEdit[], notes: string[]): ClientPlan {
  return { client, edits, notes };
}

export function defaultModel(opts: PlanOptions): string {
  if (opts.model) return opts.model;
  const m = opts.models.find((x) => x.tools) ?? opts.models[0];
  if (!m) throw new Error('No text model is configured: add one to models.yaml ("Poe: Pick Models").');
  return m.id;
}

/** Aider's (litellm's) model metadata for one model. */
export function aiderMetadata(m: ClientModel): Record<string, unknown> {
  const perToken = (m.per1kTokens / 1000) * USD_PER_POINT;
  return {
    max_input_tokens: m.contextLength,
    max_output_tokens: m.maxOutputTokens ?? Math.min(m.contextLength, 8192),
    input_cost_per_token: perToken,
    output_cost_per_token: perToken,
    litellm_provider: 'openai',
    mode: 'chat',
    ...(m.tools ? { supports_function_calling: true } : {}),
  };
}

/** True when the plan would change nothing (a re-run). */
export function planIsNoop(p: ClientPlan): boolean {
  return p.edits.every((e) => e.before === e.after);
}

// ---- JSON ---------------------------------------------------------------------------------------

function mergeJson(file: string, before: string | null, edit: (obj: Record<string, unknown>) => void): string {
  let obj: Record<string, unknown> = {};
  if (before !== null && before.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(before);
    } catch (err) {
      throw new Error(`${file} is not valid JSON (${(err as Error).message}); fix or move it, then run the command again. Nothing was changed.`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${file} does not hold a JSON object; nothing was changed.`);
    obj = parsed as Record<string, unknown>;
  }
  edit(obj);
  const after = `${JSON.stringify(obj, null, 2)}\n`;
  // Unchanged content keeps its original formatting byte for byte.
  return before !== null && sameJson(before, after) ? before : after;
}

function sameJson(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

function objectAt(obj: Record<string, unknown>, key: string, file: string): Record<string, unknown> {
  const v = obj[key];
  if (v === undefined) return (obj[key] = {}) as Record<string, unknown>;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: "${key}" is not an object; fix it by hand, nothing was changed.`);
  return v as Record<string, unknown>;
}

// ---- TOML (Codex) -------------------------------------------------------------------------------

const TOML_TABLE = /^\s*\[/;

function tomlString(s: string): string {
  return JSON.stringify(s); // a TOML basic string is a JSON string for these characters
}

/**
 * Sets top-level `model_provider` / `model` and replaces the `[model_providers.poe]` table, leaving
 * every other line (comments, profiles, other providers) as it was. Line-based on purpose: no TOML
 * library is bundled, and these keys are always simple one-line values.
 */
export function mergeCodexToml(before: string | null, o: { model: string; baseUrl: string; envKey?: string }): string {
  const lines = before === null || before === '' ? [] : before.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');
  // Drop our table (header to the next header).
  const out: string[] = [];
  let skipping = false;
  for (const line of lines) {
    if (TOML_TABLE.test(line)) skipping = /^\s*\[\s*model_providers\s*\.\s*("poe"|poe)\s*\]\s*(#.*)?$/.test(line);
    if (!skipping) out.push(line);
  }
  while (out.length > 0 && out[out.length - 1].trim() === '') out.pop();
  // Top-level keys live before the first table header.
  let firstTable = out.findIndex((l) => TOML_TABLE.test(l));
  if (firstTable === -1) firstTable = out.length;
  const setTop = (key: string, value: string): void => {
    const re = new RegExp(`^\\s*${key}\\s*=`);
    const i = out.slice(0, firstTable).findIndex((l) => re.test(l));
    const line = `${key} = ${tomlString(value)}`;
    if (i >= 0) {
      out[i] = line;
      return;
    }
    // After the last top-level line that has content, so a blank line before a table stays put.
    let at = firstTable;
    while (at > 0 && out[at - 1].trim() === '') at--;
    out.splice(at, 0, line);
    firstTable++;
  };
  setTop('model_provider', 'poe');
  setTop('model', o.model);
  // Keep a blank line between the top-level keys and a table that follows them directly.
  if (firstTable < out.length && out[firstTable - 1]?.trim() !== '') out.splice(firstTable, 0, '');
  const table = [
    '[model_providers.poe]',
    `name = ${tomlString('Poe (local proxy)')}`,
    `base_url = ${tomlString(o.baseUrl)}`,
    `wire_api = "responses"`,
    ...(o.envKey ? [`env_key = ${tomlString(o.envKey)}`] : []),
  ];
  return `${[...out, '', ...table].join('\n')}\n`;
}

// ---- YAML (Continue, Aider) ---------------------------------------------------------------------

function parseYaml(file: string, before: string | null): Document {
  const doc = parseDocument(before ?? '');
  if (doc.errors.length > 0)
    throw new Error(`${file} is not valid YAML (${doc.errors[0].message.split('\n')[0]}); fix it, then run the command again. Nothing was changed.`);
  if (doc.contents !== null && !isMap(doc.contents)) throw new Error(`${file} does not hold a YAML mapping; nothing was changed.`);
  return doc;
}

/** Sets top-level keys of a YAML mapping, keeping comments and the other keys. */
export function mergeYamlKeys(file: string, before: string | null, values: Record<string, string>): string {
  const doc = parseYaml(file, before);
  for (const [k, v] of Object.entries(values)) doc.set(k, v);
  const after = doc.toString();
  return before !== null && yamlEqual(before, after) ? before : after;
}

function yamlEqual(a: string, b: string): boolean {
  return JSON.stringify(parseDocument(a).toJS()) === JSON.stringify(parseDocument(b).toJS());
}

/** Replaces Continue's "Poe: …" model entries with one per model; the user's own entries stay. */
export function mergeContinueYaml(file: string, before: string | null, models: readonly ClientModel[], apiBase: string, apiKey: string): string {
  const doc = parseYaml(file, before);
  if (doc.contents === null || before === null || before.trim() === '') {
    doc.contents = doc.createNode({ name: 'Local Assistant', version: '1.0.0', schema: 'v1', models: [] }) as typeof doc.contents;
  }
  // Continue (the `cn` CLI included) refuses a config.yaml without name and version: add what is missing.
  for (const [key, value] of [
    ['name', 'Local Assistant'],
    ['version', '1.0.0'],
    ['schema', 'v1'],
  ] as const)
    if (!doc.has(key)) doc.set(key, value);
  let seq = doc.get('models', true);
  if (seq === undefined || seq === null) {
    doc.set('models', doc.createNode([]));
    seq = doc.get('models', true);
  }
  if (!isSeq(seq)) throw new Error(`${file}: "models" is not a list; fix it by hand, nothing was changed.`);
  seq.items = seq.items.filter((item) => {
    const name = isMap(item) ? item.get('name') : undefined;
    return !(typeof name === 'string' && name.startsWith(CONTINUE_NAME_PREFIX));
  });
  for (const m of models) {
    seq.items.push(
      doc.createNode({
        name: `${CONTINUE_NAME_PREFIX}${m.id}`,
        provider: 'openai',
        model: m.id,
        apiBase,
        apiKey,
        roles: ['chat', 'edit', 'apply'],
        ...(m.tools ? { capabilities: ['tool_use'] } : {}),
        defaultCompletionOptions: { contextLength: m.contextLength, ...(m.maxOutputTokens ? { maxTokens: Math.min(m.maxOutputTokens, m.contextLength) } : {}) },
      }),
    );
  }
  const after = doc.toString();
  return before !== null && yamlEqual(before, after) ? before : after;
}

// ---- applying and undoing ------------------------------------------------------------------------

/** One applied change, kept as `<dir>/<id>.json` so it can be undone. */
export interface ChangeRecord {
  id: string;
  /** Order of application (undo goes newest first; timestamps can tie). */
  seq: number;
  client: ClientId;
  time: string;
  files: Array<{ path: string; before: string | null; after: string }>;
}

async function readOrNull(p: string): Promise<string | null> {
  try {
    return await fs.readFile(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Reads a client's files and plans its edits. */
export async function planClientFromDisk(client: ClientId, opts: PlanOptions): Promise<ClientPlan> {
  const current: Record<string, string | null> = {};
  for (const p of clientFiles(client, opts.home)) current[p] = await readOrNull(p);
  return planClient(client, opts, current);
}

/** Writes through a temp file and a rename, so a crash never leaves half a settings file. */
async function writeAtomic(p: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(p), { recursive: true });
  let mode = 0o600; // new files may hold the access key
  try {
    mode = (await fs.stat(p)).mode & 0o777;
  } catch {
    /* new file */
  }
  const tmp = `${p}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, text, { mode });
  await fs.rename(tmp, p);
}

/**
 * Writes the plan's changed files, first saving what they held in `backupDir` (mode 0600: the old
 * contents may hold keys). Refuses when a file changed since it was planned.
 */
export async function applyPlan(p: ClientPlan, backupDir: string): Promise<ChangeRecord | undefined> {
  const changed = p.edits.filter((e) => e.before !== e.after);
  if (changed.length === 0) return undefined;
  for (const e of changed) {
    if ((await readOrNull(e.path)) !== e.before) throw new Error(`${e.path} changed since the preview; run the command again. Nothing was written.`);
  }
  const time = new Date();
  const seq = Math.max(0, ...(await listChanges(backupDir)).map((c) => c.seq ?? 0)) + 1;
  const record: ChangeRecord = {
    id: `${time.toISOString().replace(/[:.]/g, '-')}-${p.client}-${randomBytes(3).toString('hex')}`,
    seq,
    client: p.client,
    time: time.toISOString(),
    files: changed.map((e) => ({ path: e.path, before: e.before, after: e.after })),
  };
  await fs.mkdir(backupDir, { recursive: true });
  await fs.writeFile(path.join(backupDir, `${record.id}.json`), JSON.stringify(record), { mode: 0o600 });
  for (const e of changed) await writeAtomic(e.path, e.after);
  return record;
}

/** Applied changes that can still be undone, newest first. */
export async function listChanges(backupDir: string): Promise<ChangeRecord[]> {
  let names: string[];
  try {
    names = await fs.readdir(backupDir);
  } catch {
    return [];
  }
  const out: ChangeRecord[] = [];
  for (const n of names.filter((x) => x.endsWith('.json'))) {
    try {
      out.push(JSON.parse(await fs.readFile(path.join(backupDir, n), 'utf8')) as ChangeRecord);
    } catch {
      /* a torn backup is skipped, not fatal */
    }
  }
  return out.sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0));
}

export interface UndoResult {
  restored: string[];
  deleted: string[];
  /** Files edited by someone else after the change (restored anyway; their later edits are lost). */
  modifiedSince: string[];
}

/** Restores every file of a change to exactly what it held before (deleting files the change created). */
export async function undoChange(backupDir: string, record: ChangeRecord): Promise<UndoResult> {
  const result: UndoResult = { restored: [], deleted: [], modifiedSince: [] };
  for (const f of record.files) {
    const now = await readOrNull(f.path);
    if (now !== null && now !== f.after) result.modifiedSince.push(f.path);
    if (f.before === null) {
      if (now !== null) await fs.rm(f.path, { force: true });
      result.deleted.push(f.path);
    } else {
      await writeAtomic(f.path, f.before);
      result.restored.push(f.path);
    }
  }
  await fs.rm(path.join(backupDir, `${record.id}.json`), { force: true });
  return result;
}

// ---- re-pointing after a port change -------------------------------------------------------------

const ORIGIN = /https?:\/\/(?:\[[^\]\s]+\]|[A-Za-z0-9.-]+):\d+/g;

/**
 * After the proxy moved (another port), the edits that point a configured client at `origin` again:
 * in each file of the client's newest change, every proxy origin that change wrote and the file still
 * holds is replaced by `origin`. Other settings stay as they are, the models the user chose included.
 */
export function planRepoint(record: ChangeRecord, current: Readonly<Record<string, string | null>>, origin: string): ClientPlan {
  const edits: FileEdit[] = [];
  const old = new Set<string>();
  for (const f of record.files) {
    const text = current[f.path];
    if (text === null || text === undefined) continue;
    const stale = [...new Set(f.after.match(ORIGIN) ?? [])].filter((o) => o !== origin && text.includes(o));
    if (stale.length === 0) continue;
    stale.forEach((o) => old.add(o));
    edits.push({ path: f.path, before: text, after: stale.reduce((t, o) => t.split(o).join(origin), text) });
  }
  return { client: record.client, edits, notes: old.size ? [`${[...old].join(', ')} becomes ${origin}.`] : [] };
}

/** For each client, the plan re-pointing its newest configure change at `origin`; clients with nothing to change are left out. */
export async function planRepointsFromDisk(backupDir: string, origin: string): Promise<ClientPlan[]> {
  const newest = new Map<ClientId, ChangeRecord>();
  for (const c of await listChanges(backupDir)) if (!newest.has(c.client)) newest.set(c.client, c);
  const plans: ClientPlan[] = [];
  for (const record of newest.values()) {
    const current: Record<string, string | null> = {};
    for (const f of record.files) current[f.path] = await readOrNull(f.path);
    const plan = planRepoint(record, current, origin);
    if (!planIsNoop(plan)) plans.push(plan);
  }
  return plans;
}
