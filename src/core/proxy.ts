/**
 * Wires the core services together for one running proxy. Both front ends (CLI and VS Code) use it,
 * so the two never drift apart.
 */
import type { ProxyConfig } from './store/config';
import { Ledger } from './store/ledger';
import type { Logger } from './log';
import { ModelRegistry } from './store/registry';
import { ProxyServer } from './http/server';
import { createTokenCounter, type TokenCounter } from './tokens';
import type { PoeUsage } from './poe/usage';

export interface ProxyRuntimeOptions {
  config: ProxyConfig;
  /** models.yaml to use when config.modelsFile is unset. */
  bundledModelsFile: string;
  getApiKey(): string | undefined;
  logger: Logger;
  tokens?: TokenCounter;
  ledger?: Ledger;
  usage?: PoeUsage;
  /** Restrict /v1/models to these ids (the user's picks); empty = all. */
  selectedModels?: readonly string[];
}

export interface ProxyRuntime {
  server: ProxyServer;
  registry: ModelRegistry;
  ledger: Ledger;
  tokens: TokenCounter;
  dispose(): Promise<void>;
}

export async function loadRegistry(config: ProxyConfig, bundled: string, selected?: readonly string[]): Promise<ModelRegistry> {
  const registry = await ModelRegistry.load(config.modelsFile ?? bundled);
  return selected && selected.length > 0 ? registry.subset(selected) : registry;
}

export async function createProxyRuntime(opts: ProxyRuntimeOptions): Promise<ProxyRuntime> {
  const registry = await loadRegistry(opts.config, opts.bundledModelsFile, opts.selectedModels);
  const tokens = opts.tokens ?? createTokenCounter();
  const ledger = opts.ledger ?? new Ledger({ dir: opts.config.dataDir, retentionMonths: opts.config.ledgerRetentionMonths, logger: opts.logger });
  const server = new ProxyServer({ config: opts.config, registry, getApiKey: opts.getApiKey, logger: opts.logger, tokens, ledger, usage: opts.usage });
  return {
    server,
    registry,
    ledger,
    tokens,
    async dispose() {
      await server.close();
      await ledger.flush();
      if (!opts.tokens) await tokens.dispose();
    },
  };
}
