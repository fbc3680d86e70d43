/**
 * The guards every generation endpoint applies before calling Poe: the balance pause and the hard
 * per-message cap. Each endpoint renders the outcome in its own wire format.
 */
import { budgetPausedText, type SpendTracker } from '../store/budget';
import type { ProxyConfig } from '../store/config';
import { ProxyError } from '../http/errors';
import { capText } from '../log';
import { formatPoints } from './footer';
import { anthropicIdFor, estimatePoints, type ModelEntry, type ModelRegistry } from '../store/registry';
import type { PoeUsage } from '../poe/usage';

export function unknownModelError(requested: string, registry: ModelRegistry): ProxyError {
  const claude = registry.models.filter((m) => m.modality === 'text' && /^claude/i.test(m.id)).map((m) => anthropicIdFor(m.id) ?? m.id);
  const claudeHint = /claude/i.test(requested)
    ? claude.length
      ? ` Claude models here: ${claude.join(', ')}. For Claude Code, set ANTHROPIC_MODEL and ANTHROPIC_DEFAULT_OPUS_MODEL / _SONNET_MODEL / _HAIKU_MODEL to them (VS Code: "Poe: Configure Claude Code" writes them).`
      : ' No Claude model is in the registry: add one with "Poe: Pick Models" (or to models.yaml).'
    : '';
  return new ProxyError(
    404,
    `Model "${capText(requested, 200)}" is not in the proxy's model registry (${registry.source}). List the available ids with GET /v1/models, or add it to models.yaml (VS Code: "Poe: Pick Models").${claudeHint}`,
    'not_found_error',
    'model_not_found',
    'model',
  );
}

/**
 * The registry entry for the body's `model`, resolved before the rest of the body is validated: an
 * unknown model is always the 404 that names it (a client on its own default model id must learn
 * that, not some 400 about its messages). Undefined when `model` is missing or not a string (the
 * body's validation says so).
 */
export function resolveRequestedModel(body: unknown, registry: ModelRegistry): ModelEntry | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const requested = (body as { model?: unknown }).model;
  if (typeof requested !== 'string' || requested === '') return undefined;
  const model = registry.resolve(requested);
  if (!model) throw unknownModelError(requested, registry);
  return model;
}

export function noApiKeyError(): ProxyError {
  return new ProxyError(
    401,
    'No Poe API key is configured, so nothing was sent to Poe. Get a key at https://poe.com/api_key, then run "Poe: Set API Key" in VS Code, or set POE_API_KEY for the headless proxy.',
    'authentication_error',
    'no_api_key',
  );
}

/**
 * The "paused" answer when the request must not reach Poe (a used-up budget, or the balance below the
 * cutoff), else undefined. Never stalls on the Usage API: the balance is the last known one (see
 * `PoeUsage.balanceForGuard`), fetched in the background whatever the cutoff so the footer and the status
 * bar always have it.
 */
export async function pausedAnswer(config: ProxyConfig, usage: PoeUsage, spend: SpendTracker | undefined): Promise<string | undefined> {
  const budget = spend?.exhausted(config);
  if (budget) return budgetPausedText(budget, formatPoints);
  if (config.pointsCutoff <= 0) {
    void usage.balanceForGuard();
    return undefined;
  }
  const balance = await usage.balanceForGuard();
  return balance !== undefined && balance.value < config.pointsCutoff ? pausedText(balance.value, config.pointsCutoff, balance.refreshFailed) : undefined;
}

export function pausedText(balance: number, cutoff: number, refreshFailed = false): string {
  return (
    `⏸ Poe proxy paused: your Poe balance is ${formatPoints(balance)} points, below the cutoff of ${formatPoints(cutoff)}` +
    `${refreshFailed ? " (the last balance read: it could not be refreshed just now, Poe's Usage API did not answer)" : ''}. ` +
    'Nothing was sent to Poe and no points were spent. To continue, add points at https://poe.com, or lower the cutoff ' +
    '(VS Code setting "poeProxy.pointsCutoff"; headless: POINTS_CUTOFF, 0 turns the pause off).'
  );
}

/**
 * The worst case of the output-limit fields a request sets (max_tokens, max_completion_tokens,
 * max_output_tokens…): Poe may honour any of them, so the largest is what the answer may cost.
 */
export function worstOutputLimit(...values: unknown[]): number | undefined {
  let worst: number | undefined;
  for (const v of values) if (typeof v === 'number' && Number.isFinite(v) && v > 0) worst = Math.max(worst ?? 0, v);
  return worst;
}

/**
 * Tokens one image in the input is counted as (the proxy does not decode images): about what Anthropic
 * bills for a full-size image and above OpenAI's high-detail 1024×1024, so the cap errs on the safe side.
 */
export const IMAGE_TOKEN_ESTIMATE = 1_600;

const IMAGE_PART_TYPES = new Set(['image_url', 'input_image', 'image']);
/** Bounds the walk over a hostile, huge body. */
const MAX_PARTS_WALKED = 1_000_000;

/** How many image parts (chat `image_url`, Responses `input_image`, Anthropic `image`) a request body holds, at any depth. */
export function countImageParts(body: unknown): number {
  let images = 0;
  let walked = 0;
  const stack: unknown[] = [body];
  while (stack.length && walked++ < MAX_PARTS_WALKED) {
    const v = stack.pop();
    if (!v || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const x of v) if (x && typeof x === 'object') stack.push(x);
      continue;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.type === 'string' && IMAGE_PART_TYPES.has(o.type)) {
      images++;
      continue;
    }
    for (const x of Object.values(o)) if (x && typeof x === 'object') stack.push(x);
  }
  return images;
}

/** The refusal for a request whose worst-case estimate is above MAX_POINTS_PER_MESSAGE, or undefined. */
export function costCapError(config: ProxyConfig, registry: ModelRegistry, model: ModelEntry, input: number, output: number): ProxyError | undefined {
  const cap = config.maxPointsPerMessage;
  if (cap <= 0) return undefined;
  const estimate = estimatePoints(model, input + output);
  if (estimate <= cap) return undefined;
  const cheaper = registry.cheaperThan(model, input + output);
  return new ProxyError(
    400,
    `Refused before calling Poe: this request could cost up to ~${formatPoints(estimate)} points (${input.toLocaleString('en-US')} input + ${output.toLocaleString('en-US')} max output tokens on ${model.id}), above the per-message cap of ${formatPoints(cap)}. ` +
      `Lower max_tokens, shorten the conversation${cheaper.length ? `, pick a cheaper model (${cheaper.map((m) => m.id).join(', ')})` : ''}, or raise the cap (VS Code "poeProxy.maxPointsPerMessage"; headless MAX_POINTS_PER_MESSAGE, 0 = off).`,
    'invalid_request_error',
    'cost_limit_exceeded',
  );
}
