/**
 * Builds the one engine a front end holds (the CLI; VS Code builds its own in src/vscode/windowEngine.ts
 * from the services its window already has): the registry loaded, a token counter and a ledger unless
 * given, and one dispose for what was built here.
 */
import type { ProxyConfig } from './store/config';
import { Engine } from './engine';
import { Ledger } from './store/ledger';
import type { Logger } from './log';
import { ModelRegistry } from './store/registry';
import { createTokenCounter, type TokenCounter } from './tokens';
import type { PoeUsage } from './poe/usage';

export interface EngineSetup {
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

export interface BuiltEngine {
  engine: Engine;
  ledger: Ledger;
  tokens: TokenCounter;
  /** Disposes the engine, flushes the ledger and ends the token counter when it was built here. */
  dispose(): Promise<void>;
}

export async function loadRegistry(config: ProxyConfig, bundled: string, selected?: readonly string[]): Promise<ModelRegistry> {
  const registry = await ModelRegistry.load(config.modelsFile ?? bundled);
  return selected && selected.length > 0 ? registry.subset(selected) : registry;
}

export async function buildEngine(opts: EngineSetup): Promise<BuiltEngine> {
  const registry = await loadRegistry(opts.config, opts.bundledModelsFile, opts.selectedModels);
  const tokens = opts.tokens ?? createTokenCounter();
  const ledger = opts.ledger ?? new Ledger({ dir: opts.config.dataDir, retentionMonths: opts.config.ledgerRetentionMonths, logger: opts.logger });
  const engine = new Engine({ config: opts.config, registry, getApiKey: opts.getApiKey, logger: opts.logger, tokens, ledger, usage: opts.usage });
  return {
    engine,
    ledger,
    tokens,
    async dispose() {
      engine.dispose();
      await ledger.flush();
      if (!opts.tokens) await tokens.dispose();
    },
  };
}
