/**
 * The guards every generation endpoint applies before calling Poe: the balance pause and the hard
 * per-message cap. Each endpoint renders the outcome in its own wire format.
 */
import type { ProxyConfig } from './config';
import { ProxyError } from './errors';
import { capText } from './log';
import { formatPoints } from './footer';
import { estimatePoints, type ModelEntry, type ModelRegistry } from './registry';
import type { PoeUsage } from './usage';

export function unknownModelError(requested: string, registry: ModelRegistry): ProxyError {
  return new ProxyError(
    404,
    `Model "${capText(requested, 200)}" is not in the proxy's model registry (${registry.source}). List the available ids with GET /v1/models, or add it to models.yaml (VS Code: "Poe: Pick Models").`,
    'not_found_error',
    'model_not_found',
    'model',
  );
}

export function noApiKeyError(): ProxyError {
  return new ProxyError(
    401,
    'No Poe API key is configured, so nothing was sent to Poe. Get a key at https://poe.com/api_key, then run "Poe: Set API Key" in VS Code, or set POE_API_KEY for the headless proxy.',
    'authentication_error',
    'no_api_key',
  );
}

/** The balance when it is below the cutoff (the request must not reach Poe), else undefined. */
export async function pausedBalance(config: ProxyConfig, usage: PoeUsage): Promise<number | undefined> {
  if (config.pointsCutoff <= 0) return undefined;
  const balance = await usage.getBalance();
  return balance !== undefined && balance < config.pointsCutoff ? balance : undefined;
}

export function pausedText(balance: number, cutoff: number): string {
  return (
    `⏸ Poe proxy paused: your Poe balance is ${formatPoints(balance)} points, below the cutoff of ${formatPoints(cutoff)}. ` +
    'Nothing was sent to Poe and no points were spent. To continue, add points at https://poe.com, or lower the cutoff ' +
    '(VS Code setting "poeProxy.pointsCutoff"; headless: POINTS_CUTOFF, 0 turns the pause off).'
  );
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
