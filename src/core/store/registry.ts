/**
 * The model registry: models.yaml grouped by modality, validated with file/line/field in every error.
 */
import { promises as fs } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { capText } from '../log';

export const MODALITIES = ['text', 'image', 'video', 'audio'] as const;
export type Modality = (typeof MODALITIES)[number];

export interface ModelEntry {
  /** Poe's bot name, sent upstream as `model`. */
  id: string;
  modality: Modality;
  /** Fixed points per message (estimate). */
  base: number;
  /** Points per 1k tokens, input and output (estimate). */
  per1kTokens: number;
  /** Context cap for this model in tokens. */
  maxTokens?: number;
  maxOutputTokens?: number;
  aliases: string[];
  encoding?: 'o200k_base' | 'cl100k_base';
  tools?: boolean;
}

export class RegistryError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly field: string,
    problem: string,
  ) {
    // One line, bounded: the problem may quote what a hostile file holds.
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${capText(field, 100)}: ${capText(problem.replace(/\s+/g, ' '), 300)}`);
    this.name = 'RegistryError';
  }
}

export const FALLBACK_TEXT_MAX_TOKENS = 128_000;

/** Bounds on a models file (the bundled one is ~12 KB with ~100 models): larger is not a models file. */
export const MAX_MODELS_FILE_BYTES = 1024 * 1024;
const MAX_MODELS = 5_000;
export const MAX_MODEL_NAME_CHARS = 200;
const MAX_ALIASES = 50;

export class ModelRegistry {
  private readonly byKey = new Map<string, ModelEntry>();

  constructor(
    readonly models: readonly ModelEntry[],
    readonly textMaxTokens: number = FALLBACK_TEXT_MAX_TOKENS,
    readonly source = '<memory>',
  ) {
    // Exact ids win over aliases, and both over case-insensitive matches.
    for (const m of models) this.byKey.set(m.id, m);
    for (const m of models) for (const a of m.aliases) if (!this.byKey.has(a)) this.byKey.set(a, m);
    for (const m of models) {
      for (const k of [m.id, ...m.aliases]) {
        const lower = `\0${k.toLowerCase()}`;
        if (!this.byKey.has(lower)) this.byKey.set(lower, m);
      }
    }
  }

  static async load(file: string): Promise<ModelRegistry> {
    let text: string;
    try {
      const { size } = await fs.stat(file);
      if (size > MAX_MODELS_FILE_BYTES)
        throw new RegistryError(
          file,
          undefined,
          'file',
          `${size.toLocaleString('en-US')} bytes, larger than a models file can be (${MAX_MODELS_FILE_BYTES / 1024 / 1024} MiB)`,
        );
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(file, undefined, 'file', `cannot read models file (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    return ModelRegistry.parse(text, file);
  }

  /**
   * Parses and validates a models file. Whatever the text holds (nesting thousands deep, alias bombs,
   * megabytes, duplicates), the only error is a one-line RegistryError.
   */
  static parse(text: string, file = 'models.yaml'): ModelRegistry {
    if (text.length > MAX_MODELS_FILE_BYTES)
      throw new RegistryError(file, undefined, 'file', `larger than a models file can be (${MAX_MODELS_FILE_BYTES / 1024 / 1024} MiB)`);
    try {
      return ModelRegistry.parseChecked(text, file);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      const why = err instanceof RangeError ? 'nested too deeply' : `cannot be read (${(err as Error)?.message ?? err})`;
      throw new RegistryError(file, undefined, 'yaml', why);
    }
  }

  private static parseChecked(text: string, file: string): ModelRegistry {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    const lineOf = (node: YamlNode | null | undefined): number | undefined => (node?.range ? lines.linePos(node.range[0]).line : undefined);
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      if (/call stack/i.test(e.message)) throw new RegistryError(file, undefined, 'yaml', 'nested too deeply');
      // prettyErrors is off (its message quotes the source), so linePos is unset: derive the line from pos.
      const line = e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line;
      throw new RegistryError(file, line, 'yaml', e.message.split('\n')[0]);
    }
    const root = doc.contents;
    if (!isMap(root)) throw new RegistryError(file, lineOf(root as YamlNode), '(root)', 'expected a mapping with `models:`');

    let textMax = FALLBACK_TEXT_MAX_TOKENS;
    const defaults = root.get('defaults', true) as YamlNode | undefined;
    if (defaults !== undefined && defaults !== null) {
      if (!isMap(defaults)) throw new RegistryError(file, lineOf(defaults), 'defaults', 'expected a mapping');
      const v = (defaults as YAMLMap).get('text_max_tokens');
      if (v !== undefined) {
        if (!isPositiveInt(v)) {
          throw new RegistryError(
            file,
            lineOf((defaults as YAMLMap).get('text_max_tokens', true) as YamlNode),
            'defaults.text_max_tokens',
            `expected a positive integer, got ${JSON.stringify(v)}`,
          );
        }
        textMax = v as number;
      }
    }

    const modelsNode = root.get('models', true) as YamlNode | undefined;
    if (!isMap(modelsNode)) throw new RegistryError(file, lineOf(modelsNode ?? root), 'models', 'expected a mapping of modality → list of models');

    const entries: ModelEntry[] = [];
    const seen = new Map<string, string>();
    for (const pair of (modelsNode as YAMLMap).items) {
      const modality = String((pair.key as { value?: unknown })?.value ?? pair.key);
      const listNode = pair.value as YamlNode | null;
      if (!(MODALITIES as readonly string[]).includes(modality)) {
        throw new RegistryError(file, lineOf(pair.key as YamlNode), `models.${modality}`, `unknown modality; use one of ${MODALITIES.join(', ')}`);
      }
      if (listNode === null || listNode === undefined) continue;
      if (!isSeq(listNode)) throw new RegistryError(file, lineOf(listNode), `models.${modality}`, 'expected a list of models');
      listNode.items.forEach((item, index) => {
        const where = `models.${modality}[${index}]`;
        const itemNode = item as YamlNode;
        if (!isMap(itemNode)) throw new RegistryError(file, lineOf(itemNode), where, 'expected a mapping with poe_name');
        const map = itemNode as YAMLMap;
        const fieldLine = (key: string): number | undefined => lineOf((map.get(key, true) as YamlNode | undefined) ?? itemNode);
        const fail = (key: string, problem: string): never => {
          throw new RegistryError(file, fieldLine(key), `${where}.${key}`, problem);
        };
        const known = new Set(['poe_name', 'base', 'per_1k_tokens', 'max_tokens', 'max_output_tokens', 'aliases', 'encoding', 'tools']);
        for (const p of map.items) {
          const k = String((p.key as { value?: unknown })?.value ?? p.key);
          if (!known.has(k)) fail(k, `unknown field; known fields: ${[...known].join(', ')}`);
        }
        const id = map.get('poe_name');
        if (typeof id !== 'string' || id.trim() === '') fail('poe_name', 'required: the exact Poe bot name');
        if ((id as string).length > MAX_MODEL_NAME_CHARS) fail('poe_name', `longer than ${MAX_MODEL_NAME_CHARS} characters`);
        if (entries.length >= MAX_MODELS) fail('poe_name', `more than ${MAX_MODELS} models`);
        const num = (key: string, required: boolean, int: boolean): number | undefined => {
          const v = map.get(key);
          if (v === undefined || v === null) {
            if (required) fail(key, 'required number');
            return undefined;
          }
          if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (int && !Number.isInteger(v))) {
            fail(key, `expected a non-negative ${int ? 'integer' : 'number'}, got ${JSON.stringify(v)}`);
          }
          return v as number;
        };
        const aliasesRaw = map.get('aliases');
        let aliases: string[] = [];
        if (aliasesRaw !== undefined && aliasesRaw !== null) {
          const json = isSeq(aliasesRaw) ? (aliasesRaw.toJSON() as unknown[]) : undefined;
          if (!json || !json.every((a) => typeof a === 'string' && a.trim().length > 0 && a.length <= MAX_MODEL_NAME_CHARS))
            fail('aliases', `expected a list of names (at most ${MAX_MODEL_NAME_CHARS} characters each)`);
          if ((json as string[]).length > MAX_ALIASES) fail('aliases', `more than ${MAX_ALIASES} aliases`);
          aliases = (json as string[]).map((a) => a.trim());
        }
        const encoding = map.get('encoding');
        if (encoding !== undefined && encoding !== 'o200k_base' && encoding !== 'cl100k_base') {
          fail('encoding', 'expected o200k_base or cl100k_base');
        }
        const tools = map.get('tools');
        if (tools !== undefined && typeof tools !== 'boolean') fail('tools', 'expected true or false');
        const maxTokens = num('max_tokens', false, true);
        if (maxTokens === 0) fail('max_tokens', 'must be positive');
        const entry: ModelEntry = {
          id: (id as string).trim(),
          modality: modality as Modality,
          base: num('base', false, false) ?? 0,
          per1kTokens: num('per_1k_tokens', false, false) ?? 0,
          maxTokens,
          maxOutputTokens: num('max_output_tokens', false, true),
          aliases,
          encoding: encoding as ModelEntry['encoding'],
          tools: tools as boolean | undefined,
        };
        for (const name of [entry.id, ...aliases]) {
          const prev = seen.get(modelNameKey(name));
          if (prev) fail(name === entry.id ? 'poe_name' : 'aliases', `"${name}" is already used by ${prev}`);
          seen.set(modelNameKey(name), where);
        }
        entries.push(entry);
      });
    }
    if (entries.length === 0) throw new RegistryError(file, lineOf(modelsNode), 'models', 'no models defined');
    return new ModelRegistry(entries, textMax, file);
  }

  /**
   * Exact id, alias, then case-insensitive match; then an Anthropic model id (`claude-opus-4-5`,
   * `claude-sonnet-4-5-20250929`, `claude-3-5-haiku-20241022`, …): the registry's Claude entry of that
   * family and version, else the newest of that family (so a client left on its own defaults, or on a
   * model newer than the registry, still gets a Claude of the kind it asked for).
   */
  resolve(id: string): ModelEntry | undefined {
    return this.byKey.get(id) ?? this.byKey.get(`\0${id.toLowerCase()}`) ?? this.resolveVendorId(id);
  }

  private resolveVendorId(id: string): ModelEntry | undefined {
    const wanted = parseAnthropicId(id);
    if (!wanted) return undefined;
    const family = this.claudeFamily(wanted.family);
    return family.find((c) => c.version === wanted.version)?.model ?? family[0]?.model;
  }

  /** The registry's Claude text entries of one family, newest version first. */
  private claudeFamily(family: ClaudeFamily): Array<{ model: ModelEntry; version: string }> {
    const out: Array<{ model: ModelEntry; version: string }> = [];
    for (const m of this.models) {
      const c = m.modality === 'text' ? parseClaudeName(m.id) : undefined;
      if (c?.family === family) out.push({ model: m, version: c.version });
    }
    return out.sort((a, b) => compareVersions(b.version, a.version));
  }

  /** The newest Claude text entry of each family in the registry. */
  newestClaude(): Partial<Record<ClaudeFamily, ModelEntry>> {
    const out: Partial<Record<ClaudeFamily, ModelEntry>> = {};
    for (const f of CLAUDE_FAMILIES) {
      const newest = this.claudeFamily(f)[0];
      if (newest) out[f] = newest.model;
    }
    return out;
  }

  /**
   * The other ids that reach `model`: its models.yaml aliases and, for a Claude entry, Anthropic's
   * undated id (`Claude-Opus-4.5` → `claude-opus-4-5`; dated forms resolve too).
   */
  idsFor(model: ModelEntry): string[] {
    const ids = [...model.aliases];
    const vendor = model.modality === 'text' ? anthropicIdFor(model.id) : undefined;
    if (vendor && !ids.some((a) => a.toLowerCase() === vendor)) ids.unshift(vendor);
    return ids;
  }

  /** Context cap for a model: the smallest of its own cap, the registry default (text only) and the global setting. */
  contextLimit(model: ModelEntry, globalLimit: number): number {
    let limit = model.maxTokens ?? Number.POSITIVE_INFINITY;
    if (model.modality === 'text') limit = Math.min(limit, this.textMaxTokens);
    if (globalLimit > 0) limit = Math.min(limit, globalLimit);
    return Number.isFinite(limit) ? limit : this.textMaxTokens;
  }

  /** Cheaper models of the same modality, cheapest first, for a given token count. */
  cheaperThan(model: ModelEntry, tokens: number, max = 3): ModelEntry[] {
    const own = estimatePoints(model, tokens);
    return this.models
      .filter((m) => m.modality === model.modality && m.id !== model.id && estimatePoints(m, tokens) < own)
      .sort((a, b) => estimatePoints(a, tokens) - estimatePoints(b, tokens))
      .slice(0, max);
  }

  /** A registry exposing only the given ids (the user's picked models); unknown ids are ignored. */
  subset(ids: readonly string[]): ModelRegistry {
    const wanted = new Set(ids.map(modelNameKey));
    const kept = this.models.filter((m) => wanted.has(modelNameKey(m.id)));
    return new ModelRegistry(kept.length > 0 ? kept : this.models, this.textMaxTokens, this.source);
  }
}

/**
 * The identity of a model name: two names with the same key are the same model to the registry (ids
 * and aliases are trimmed, and matched case-insensitively). Whatever writes a models file dedupes by it.
 */
export function modelNameKey(name: string): string {
  return name.trim().toLowerCase();
}

export const CLAUDE_FAMILIES = ['opus', 'sonnet', 'haiku'] as const;
export type ClaudeFamily = (typeof CLAUDE_FAMILIES)[number];

/**
 * Anthropic's model ids: `claude-<family>-<major>[-<minor>][-<yyyymmdd>]` (Claude 4 and later) or
 * `claude-<major>[-<minor>]-<family>[-<yyyymmdd>]` (Claude 3.x), optionally with Claude Code's `[1m]`.
 */
const ANTHROPIC_ID = /^claude-(?:(\d+)(?:-(\d{1,2}))?-)?(opus|sonnet|haiku)(?:-(\d+)(?:-(\d{1,2}))?)?(?:-\d{8})?(?:\[1m\])?$/i;
/** Poe's Claude bot names: `Claude-Opus-4.5`, `Claude-Sonnet-4`, `Claude-3.5-Haiku`, … */
const CLAUDE_NAME = /^claude-(?:(\d+)(?:\.(\d+))?-)?(opus|sonnet|haiku)(?:-(\d+)(?:\.(\d+))?)?$/i;

function familyVersion(m: RegExpExecArray | null): { family: ClaudeFamily; version: string } | undefined {
  if (!m) return undefined;
  const [, preMajor, preMinor, family, major, minor] = m;
  const maj = major ?? preMajor;
  if (maj === undefined) return undefined;
  const min = major !== undefined ? minor : preMinor;
  return { family: family.toLowerCase() as ClaudeFamily, version: min !== undefined ? `${maj}.${min}` : maj };
}

export function parseAnthropicId(id: string): { family: ClaudeFamily; version: string } | undefined {
  return familyVersion(ANTHROPIC_ID.exec(id));
}

export function parseClaudeName(name: string): { family: ClaudeFamily; version: string } | undefined {
  return familyVersion(CLAUDE_NAME.exec(name));
}

/**
 * Anthropic's undated id for a Poe Claude bot name (`Claude-Sonnet-4.6` → `claude-sonnet-4-6`), which
 * resolves back to it. Claude Code recognises only such ids: it reads `Claude-Sonnet-4.6` as the
 * retired Sonnet 4 and warns.
 */
export function anthropicIdFor(name: string): string | undefined {
  const c = parseClaudeName(name);
  return c ? `claude-${c.family}-${c.version.replace(/\./g, '-')}` : undefined;
}

/** Orders Claude versions (`4.5` < `4.6` < `5`). */
export function compareVersions(a: string, b: string): number {
  const [a1, a2 = 0] = a.split('.').map(Number);
  const [b1, b2 = 0] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}

/** models.yaml's local estimate: `base + per_1k_tokens × tokens / 1000`, rounded up. */
export function estimatePoints(model: ModelEntry, tokens: number): number {
  return Math.ceil(model.base + (model.per1kTokens * Math.max(0, tokens)) / 1000);
}

function isPositiveInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}
