/**
 * Writes the user's picked models as a models.yaml the core registry reads (pure; no `vscode`).
 * Models Poe lists live but models.yaml does not know get base/per_1k_tokens 0 and a comment saying
 * their prices are unknown (their cost is then only what Poe's Usage API reports).
 */
import { MAX_MODEL_NAME_CHARS, MODALITIES, modelNameKey, type Modality, type ModelEntry, type ModelRegistry } from '../core/store/registry';

export interface PickedModel {
  entry: ModelEntry;
  /** Listed by Poe but absent from models.yaml: prices unknown. */
  liveOnly: boolean;
}

const q = (s: string): string => JSON.stringify(s);

/**
 * The picks the registry can load: a model whose name is the same model to the registry as one
 * already kept (names differing only by case or surrounding spaces), or that it would refuse (empty,
 * too long), is left out; so are aliases that clash. What the picker writes therefore always loads.
 */
export function loadablePicks(picked: readonly PickedModel[]): PickedModel[] {
  const used = new Set<string>();
  const out: PickedModel[] = [];
  for (const p of picked) {
    const id = p.entry.id.trim();
    const key = modelNameKey(id);
    if (!id || id.length > MAX_MODEL_NAME_CHARS || used.has(key)) continue;
    used.add(key);
    const aliases: string[] = [];
    for (const a of p.entry.aliases) {
      const k = modelNameKey(a);
      if (!k || a.length > MAX_MODEL_NAME_CHARS || used.has(k)) continue;
      used.add(k);
      aliases.push(a.trim());
    }
    out.push({ ...p, entry: { ...p.entry, id, aliases } });
  }
  return out;
}

export function renderModelsYaml(picks: readonly PickedModel[], opts: { textMaxTokens: number; source: string; now?: Date }): string {
  const picked = loadablePicks(picks);
  const lines: string[] = [
    '# Poe Proxy — your picked models (written by "Poe: Pick Models").',
    `# Prices and limits are copied from ${opts.source}${opts.now ? ` on ${opts.now.toISOString().slice(0, 10)}` : ''}.`,
    '# Edit freely (same format as the bundled models.yaml), or run "Poe: Pick Models" again.',
    '',
    'defaults:',
    `  text_max_tokens: ${opts.textMaxTokens}`,
    '',
    'models:',
  ];
  const byModality = new Map<Modality, PickedModel[]>();
  for (const p of picked) {
    const list = byModality.get(p.entry.modality) ?? [];
    list.push(p);
    byModality.set(p.entry.modality, list);
  }
  for (const modality of MODALITIES) {
    const list = byModality.get(modality);
    if (!list || list.length === 0) continue;
    lines.push(`  ${modality}:`);
    for (const { entry: m, liveOnly } of list) {
      if (liveOnly) lines.push("    # Listed by Poe but not in models.yaml: prices unknown (0 = no local estimate; Poe's Usage API reports the real cost).");
      lines.push(`    - poe_name: ${q(m.id)}`);
      lines.push(`      base: ${m.base}`);
      lines.push(`      per_1k_tokens: ${m.per1kTokens}`);
      if (m.maxTokens !== undefined) lines.push(`      max_tokens: ${m.maxTokens}`);
      if (m.maxOutputTokens !== undefined) lines.push(`      max_output_tokens: ${m.maxOutputTokens}`);
      if (m.aliases.length > 0) lines.push(`      aliases: [${m.aliases.map(q).join(', ')}]`);
      if (m.encoding) lines.push(`      encoding: ${m.encoding}`);
      if (m.tools !== undefined) lines.push(`      tools: ${m.tools}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** One model of Poe's live GET /v1/models, reduced to what the picker shows. */
export interface LiveModel {
  id: string;
  modality: Modality;
  description?: string;
}

/** Parses Poe's /v1/models body defensively (OpenAI list; output modality from `architecture` when present). */
export function parseLiveModels(body: unknown): LiveModel[] {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return [];
  const out: LiveModel[] = [];
  const seen = new Set<string>();
  for (const item of data) {
    if (!item || typeof item !== 'object') continue;
    const r = item as Record<string, unknown>;
    if (typeof r.id !== 'string' || !r.id.trim() || seen.has(modelNameKey(r.id))) continue;
    seen.add(modelNameKey(r.id));
    out.push({ id: r.id.trim(), modality: liveModality(r), description: typeof r.description === 'string' ? r.description : undefined });
  }
  return out;
}

function liveModality(r: Record<string, unknown>): Modality {
  const arch = r.architecture as { output_modalities?: unknown; modality?: unknown } | undefined;
  const outs = Array.isArray(arch?.output_modalities) ? arch.output_modalities.filter((x): x is string => typeof x === 'string') : [];
  if (typeof arch?.modality === 'string') {
    const after = arch.modality.split('->')[1];
    if (after) outs.push(...after.split(/[,+]/).map((s) => s.trim()));
  }
  for (const m of ['video', 'image', 'audio'] as const) if (outs.includes(m)) return m;
  return 'text';
}

/**
 * The second line of a Pick Models row: its kind (so typing "image" finds the image models), context
 * window, tool support, and why its price or availability is uncertain.
 */
export function candidateDetail(c: Candidate, kindLabel: string): string {
  const parts = [kindLabel];
  if (c.entry.maxTokens) parts.push(`${c.entry.maxTokens.toLocaleString('en-US')}-token context`);
  if (c.entry.modality === 'text') parts.push(c.entry.tools === false ? 'no tool calls' : 'tool calls');
  if (c.liveOnly) parts.push('not in models.yaml: price unknown');
  if (c.live === false) parts.push('not listed by Poe right now');
  return parts.join(' · ');
}

/** "12 pts/msg + 0.5 pts/1k tokens" style price of a registry entry (Pick Models and the Configure pickers alike). */
export function describePrice(m: Pick<ModelEntry, 'base' | 'per1kTokens'>): string {
  const parts: string[] = [];
  if (m.base > 0) parts.push(`${m.base.toLocaleString('en-US')} pts/msg`);
  if (m.per1kTokens > 0) parts.push(`${m.per1kTokens.toLocaleString('en-US')} pts/1k tokens`);
  return parts.length > 0 ? parts.join(' + ') : 'free or unknown';
}

export interface Candidate extends PickedModel {
  /** Listed by Poe's live /v1/models (undefined when the live list could not be fetched). */
  live: boolean | undefined;
  /** Shown now (picked before, or everything when nothing was picked yet). */
  picked: boolean;
}

/** Merges models.yaml, earlier picks and the live list (pure apart from its inputs). */
export function mergeCandidates(
  source: ModelRegistry,
  previous: ModelRegistry | undefined,
  live: LiveModel[] | undefined,
  selected: readonly string[] | undefined,
): Candidate[] {
  const liveIds = live ? new Set(live.map((m) => modelNameKey(m.id))) : undefined;
  const chosen = selected ? new Set(selected.map(modelNameKey)) : undefined;
  const out: Candidate[] = [];
  const seen = new Set<string>();
  const add = (entry: ModelEntry, liveOnly: boolean): void => {
    const k = modelNameKey(entry.id);
    if (seen.has(k)) return;
    seen.add(k);
    out.push({ entry, liveOnly, live: liveIds ? liveIds.has(k) : undefined, picked: chosen ? chosen.has(k) : !liveOnly });
  };
  for (const m of source.models) add(m, false);
  // Earlier picks of models that models.yaml does not know keep what the picks file says.
  for (const m of previous?.models ?? []) if (!source.resolve(m.id)) add(m, true);
  for (const m of live ?? []) {
    if (source.resolve(m.id)) continue;
    add({ id: m.id, modality: m.modality, base: 0, per1kTokens: 0, aliases: [] }, true);
  }
  return out;
}
