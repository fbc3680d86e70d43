/**
 * The window's one engine (src/core/engine.ts), kept for the window's lifetime: one token counter (one
 * tokenizer worker), the window's usage service, its ledger. The proxy's socket (ProxyController), the
 * Copilot Chat provider, the configure commands and the model picker all read it; this is the one place
 * that turns the settings, the stored access key and the user's picks into the engine's config and registry.
 */
import * as vscode from 'vscode';
import { Engine } from '../core/engine';
import type { ProxyConfig } from '../core/store/config';
import type { Ledger } from '../core/store/ledger';
import { loadRegistry } from '../core/proxy';
import { ModelRegistry, RegistryError } from '../core/store/registry';
import { createTokenCounter, type ManagedTokenCounter } from '../core/tokens';
import type { BalanceService } from './balance';
import type { Config } from './config';
import type { KeyStore } from './keyStore';
import type { ChannelLogger } from './logger';
import type { ModelsStore } from './modelsStore';
import { DisposableStore } from './registration';

export interface WindowEngineDeps {
  config: Config;
  keys: KeyStore;
  models: ModelsStore;
  ledger: Ledger;
  balance: BalanceService;
  logger: ChannelLogger;
  bundledModelsFile: string;
}

export class WindowEngine implements vscode.Disposable {
  /** The window's one token counter; its worker starts on the first count. */
  readonly tokens: ManagedTokenCounter;
  private coreValue: Engine | undefined;
  /** Whether the engine got models from a load (else its registry is the empty placeholder). */
  private hasModels = false;
  /** The models as last loaded; undefined until then, or when a change made them stale. */
  private loaded: Promise<ModelRegistry> | undefined;
  /** The newest load started: only its result reaches the engine (an older one finishing late does not). */
  private latestLoad: Promise<ModelRegistry> | undefined;
  private readonly subs: DisposableStore;

  constructor(private readonly deps: WindowEngineDeps) {
    this.subs = new DisposableStore(deps.logger);
    this.tokens = createTokenCounter({ logger: deps.logger });
    // The engine follows the settings and the access key whether or not this window serves.
    this.subs.add(
      deps.config.onDidChange((e) => {
        if (e.keys.includes('modelsFile')) this.invalidateModels();
        this.applySettings();
      }),
    );
    this.subs.add(
      deps.keys.onDidChange((which) => {
        if (which === 'accessKey') this.applySettings();
      }),
    );
  }

  /**
   * The engine, built on first use (not during activation: it seeds its spend from the ledger). Its
   * registry is empty until the models are loaded (`registry()` / `reloadModels()`).
   */
  get core(): Engine {
    this.coreValue ??= new Engine({
      config: this.effectiveConfig(),
      registry: new ModelRegistry([], undefined, '<not loaded>'),
      getApiKey: () => this.deps.keys.poeKey,
      logger: this.deps.logger,
      tokens: this.tokens,
      ledger: this.deps.ledger,
      usage: this.deps.balance.usage,
    });
    return this.coreValue;
  }

  /** The proxy's config: the settings, the user's picks as the models file, and the access key when one is required. */
  effectiveConfig(): ProxyConfig {
    return this.deps.config.proxyConfig({ accessKey: this.deps.keys.localAccessKey, modelsFile: this.deps.models.picksFile });
  }

  /** The models file the proxy reads: the setting, else the user's picks, else the bundled one. */
  modelsFile(): string {
    return this.effectiveConfig().modelsFile ?? this.deps.bundledModelsFile;
  }

  /** The registry Pick Models offers: the explicit models file setting, else the bundled one (not the picks). */
  pickSource(): Promise<ModelRegistry> {
    return ModelRegistry.load(this.deps.config.base.modelsFile ?? this.deps.bundledModelsFile);
  }

  /** Applies the current settings (no new registry). */
  applySettings(): void {
    this.coreValue?.reconfigure(this.effectiveConfig());
  }

  /** The engine's models, loaded first if they are not yet (or went stale); rejects with the load error. */
  registry(): Promise<ModelRegistry> {
    if (!this.loaded) this.reloadModels().catch(() => undefined);
    return this.loaded!;
  }

  /** The models changed (a picks save, a settings change): the next `registry()` reads them again. */
  invalidateModels(): void {
    this.loaded = undefined;
  }

  /** Reads the models file now and gives the engine its models; on failure the engine keeps the previous ones. */
  reloadModels(): Promise<ModelRegistry> {
    const config = this.effectiveConfig();
    const load = loadRegistry(config, this.deps.bundledModelsFile, this.deps.models.selected).then((registry) => {
      if (this.latestLoad === load) {
        this.core.reconfigure(this.effectiveConfig(), registry); // the settings as they are now, should they have changed meanwhile
        this.hasModels = true;
      }
      return registry;
    });
    this.loaded = load;
    this.latestLoad = load;
    // After a failed load the engine keeps the models it had; without any, the next use tries again.
    load.catch(() => {
      if (this.loaded === load) this.loaded = this.hasModels ? Promise.resolve(this.core.registry) : undefined;
    });
    return load;
  }

  /** `reloadModels` for a change while serving: a failure is shown (with the models file to open), the previous models stay. */
  async reloadModelsOrReport(): Promise<ModelRegistry | undefined> {
    try {
      return await this.reloadModels();
    } catch (err) {
      const message = err instanceof RegistryError ? `Invalid models file: ${err.message}` : `Cannot load the models: ${(err as Error).message}`;
      this.deps.logger.error(`${message} (keeping the previous models)`);
      void vscode.window.showErrorMessage(`Poe proxy: ${message}. The previous models stay in use.`, 'Open Models File').then((a) => {
        if (a) void vscode.commands.executeCommand('poeProxy.openModelsFile');
      });
      return undefined;
    }
  }

  dispose(): void {
    this.subs.dispose();
    this.coreValue?.dispose();
    void this.tokens.dispose().catch(() => undefined);
  }
}
