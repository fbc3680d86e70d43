/**
 * `poe-proxy models`: Poe's live model list (GET {POE_BASE_URL}/v1/models), each with its price from the
 * registry when models.yaml knows it (marked `*`), as the seed's list_models.py printed it. Headless
 * parity with "Poe: Pick Models".
 */
import type { ModelRegistry } from '../core/store/registry';
import { UpstreamClient } from '../core/poe/upstream';
import { PROXY_NAME, PROXY_VERSION } from '../core/version';
import { describePrice, parseLiveModels } from '../vscode/modelsYaml';

export interface ListModelsOptions {
  baseUrl: string;
  apiKey?: string;
  registry: ModelRegistry;
  out(text: string): void;
  timeoutMs?: number;
}

/** Prints the table; resolves with the exit code (1 when Poe's list could not be read). */
export async function listModels(opts: ListModelsOptions): Promise<{ code: number; error?: string }> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const client = new UpstreamClient({
    baseUrl: opts.baseUrl,
    getApiKey: () => opts.apiKey,
    headersTimeoutMs: timeoutMs,
    idleTimeoutMs: timeoutMs,
    userAgent: `${PROXY_NAME}/${PROXY_VERSION}`,
  });
  try {
    const res = await client.getJson('/v1/models', AbortSignal.timeout(timeoutMs));
    if (res.status !== 200) return { code: 1, error: `Poe's model list answered HTTP ${res.status} (${opts.baseUrl}/v1/models).` };
    const live = parseLiveModels(res.body).sort((a, b) => a.modality.localeCompare(b.modality) || a.id.localeCompare(b.id));
    const width = Math.max(5, ...live.map((m) => m.id.length));
    opts.out(`${'Model'.padEnd(width + 2)}${'Kind'.padEnd(7)}Price (points)\n`);
    let known = 0;
    for (const m of live) {
      const entry = opts.registry.resolve(m.id);
      if (entry) known++;
      const price = entry ? describePrice(entry) || 'free' : "unknown (Poe reports each request's cost)";
      opts.out(`${entry ? '*' : ' '} ${m.id.padEnd(width)} ${m.modality.padEnd(6)} ${price}\n`);
    }
    opts.out(`\n${live.length} models at ${opts.baseUrl}; * = in the registry (${opts.registry.source}), ${known} of them.\n`);
    return { code: 0 };
  } catch (err) {
    return { code: 1, error: `Cannot read Poe's model list: ${(err as Error).message}` };
  } finally {
    client.dispose();
  }
}
