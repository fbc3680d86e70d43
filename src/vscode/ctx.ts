/**
 * The extension's context: owns every service and its lifetime (as rust-analyzer's `Ctx`), among them
 * the window's one engine (windowEngine.ts), which the proxy's socket, Copilot Chat, the configure
 * commands and the model picker share. Built
 * synchronously and cheaply in `activate`; `init()` does the async work (secrets, autostart) after
 * activation has returned.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { apiKeyFromEnv } from '../core/store/config';
import { Ledger } from '../core/store/ledger';
import { registerSecret } from '../core/log';
import { BalanceService } from './balance';
import { registerBudgetNotice } from './budgetNotice';
import { registerClientConfigCommands } from './clientConfigCommands';
import { registerCommands, WALKTHROUGH_ID } from './commands';
import { Config } from './config';
import { KeyStore } from './keyStore';
import { registerLmProvider, type PoeChatProvider } from './lmProvider';
import { ChannelLogger } from './logger';
import type { PickerDeps } from './modelPicker';
import { ModelsStore } from './modelsStore';
import { ACTIONS, Notifier } from './notify';
import { ProxyController } from './proxyController';
import { DisposableStore } from './registration';
import { StatusBar } from './statusBar';
import { WindowEngine } from './windowEngine';

const ENV_KEY_OFFERED = 'poeProxy.envKeyOffered';
/** globalState: the walkthrough was opened once (on the first start after install). */
export const WALKTHROUGH_SHOWN = 'poeProxy.walkthroughShown';
const WALKTHROUGH_REOPEN_MS = 3_000;

export class Ctx implements vscode.Disposable {
  readonly logger: ChannelLogger;
  readonly config: Config;
  readonly keys: KeyStore;
  readonly ledger: Ledger;
  readonly balance: BalanceService;
  readonly models: ModelsStore;
  /** The window's engine: one for its lifetime, with one token counter and one usage service. */
  readonly engine: WindowEngine;
  readonly controller: ProxyController;
  readonly statusBar: StatusBar;
  /** Notifications with their actions (and a record of them for the tests). */
  readonly notifier = new Notifier();
  /** Poe's models for Copilot Chat / vscode.lm. */
  readonly lm: PoeChatProvider;
  readonly bundledModelsFile: string;
  /** Resolves when the startup work (keys loaded, autostart attempted) is done. */
  readonly ready: Promise<void>;
  private readonly disposables: DisposableStore;
  private disposed = false;

  constructor(readonly extension: vscode.ExtensionContext) {
    const logger = new ChannelLogger();
    this.disposables = new DisposableStore(logger);
    const own = <T extends vscode.Disposable>(d: T): T => this.disposables.add(d);
    this.logger = own(logger);
    const dataDir = extension.globalStorageUri.fsPath;
    this.config = own(new Config(dataDir, (m) => this.logger.warn(m)));
    this.keys = own(new KeyStore(extension.secrets, this.logger));
    this.bundledModelsFile = path.join(extension.extensionPath, 'models.yaml');
    const base = this.config.base;
    this.ledger = new Ledger({
      dir: dataDir,
      retentionMonths: base.ledgerRetentionMonths,
      logger: this.logger,
      // Test seam (test/e2e/historyCounting.e2e.ts): slows the background count so its partial state can be
      // looked at. Never read by an installed extension (only in an Extension Development Host or a test run).
      countPauseMs: extension.extensionMode === vscode.ExtensionMode.Production ? 0 : Number(process.env.POE_PROXY_TEST_LEDGER_COUNT_PAUSE_MS) || 0,
    });
    this.balance = own(
      new BalanceService({
        baseUrl: base.poeBaseUrl,
        getApiKey: () => this.keys.poeKey,
        logger: this.logger,
        balanceTtlMs: base.balanceTtlMs,
        balanceTimeoutMs: base.balanceTimeoutMs,
        pointsWaitMs: base.pointsWaitMs,
      }),
    );
    this.models = new ModelsStore(extension.globalState, dataDir);
    this.engine = own(
      new WindowEngine({
        config: this.config,
        keys: this.keys,
        models: this.models,
        ledger: this.ledger,
        balance: this.balance,
        logger: this.logger,
        bundledModelsFile: this.bundledModelsFile,
      }),
    );
    this.controller = own(
      new ProxyController({
        shared: extension.globalState,
        config: this.config,
        keys: this.keys,
        balance: this.balance,
        logger: this.logger,
        engine: this.engine,
      }),
    );
    this.statusBar = own(new StatusBar(this.controller, this.balance, this.keys, this.config, this.notifier));
    own(registerBudgetNotice(this.controller, this.config));
    for (const d of registerCommands(this)) own(d);
    for (const d of registerClientConfigCommands(this)) own(d);
    // Poe's models in Copilot Chat / vscode.lm, served in process by the same pipeline.
    this.lm = own(
      registerLmProvider({
        engine: this.engine,
        controller: this.controller,
        config: this.config,
        logger: this.logger,
        onDidFinishDetached: () => this.statusBar.update(),
      }),
    );
    own(this.keys.onDidChange((which) => this.onKeyChanged(which)));
    own(
      this.config.onDidChange((change) => {
        if (change.keys.includes('ledgerRetentionMonths')) this.ledger.setRetentionMonths(this.config.base.ledgerRetentionMonths);
      }),
    );
    own(this.controller.onDidChangeState(() => this.updateContextKeys()));
    // The walkthrough's "Send a request" step ticks on the first request this window records (HTTP or Copilot Chat).
    const sawRequest = this.ledger.onDidAppend(() => {
      sawRequest.dispose();
      void vscode.commands.executeCommand('setContext', 'poeProxy.hasRequests', true).then(undefined, () => undefined);
    });
    own(sawRequest);
    own(
      vscode.workspace.onDidSaveTextDocument((doc) => {
        if (doc.uri.scheme === 'file' && path.resolve(doc.uri.fsPath) === path.resolve(this.effectiveModelsFile()))
          void this.controller.reloadModels().then(() => this.lm.invalidate());
      }),
    );
    this.ready = this.init().catch((err) => this.logger.error(`startup failed: ${(err as Error)?.stack ?? err}`));
  }

  get extensionUri(): vscode.Uri {
    return this.extension.extensionUri;
  }

  get pickerDeps(): PickerDeps {
    return {
      config: this.config,
      models: this.models,
      controller: this.controller,
      engine: this.engine,
      logger: this.logger,
    };
  }

  /** The models file the proxy reads: the setting, else the user's picks, else the bundled one. */
  effectiveModelsFile(): string {
    return this.engine.modelsFile();
  }

  private async init(): Promise<void> {
    // Let activate() return first (the first setContext costs ~20 ms in the host: the bench's profile).
    await new Promise((r) => setImmediate(r));
    this.updateContextKeys();
    await this.keys.load();
    this.updateContextKeys();
    this.statusBar.update();
    if (this.keys.poeKey) void this.balance.refresh().then(() => this.reportStartupProblem());
    else void this.offerEnvKey();
    void this.openWalkthroughOnce();
    // A Stop (in any window) holds until a Start, also across restarts.
    if (this.config.autoStart && !this.controller.isStoppedEverywhere) await this.controller.start();
  }

  private onKeyChanged(which: 'apiKey' | 'accessKey'): void {
    if (which === 'apiKey') {
      this.balance.keyChanged();
      this.logger.info(this.keys.poeKey ? 'Poe API key changed' : 'Poe API key removed');
    }
    this.updateContextKeys();
  }

  /** The first start after install, with no key yet: open the walkthrough (once; remembered in globalState). */
  private async openWalkthroughOnce(): Promise<void> {
    if (this.extension.globalState.get<boolean>(WALKTHROUGH_SHOWN)) return;
    await this.extension.globalState.update(WALKTHROUGH_SHOWN, true);
    if (this.keys.poeKey) return; // set up already (an update, or a key from another profile's window)
    // Opened without taking the focus, so a command palette the user already opened stays open. Right after
    // start-up the Welcome page may not know the extensions' walkthroughs yet and shows one of its own
    // instead, under the same tab (the API cannot tell which): ask once more a moment later, while that tab
    // is still the active one.
    const open = (): Thenable<unknown> =>
      vscode.commands
        .executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, { toSide: false, inactive: true })
        .then(undefined, (err) => this.logger.warn(`cannot open the walkthrough: ${(err as Error)?.message ?? err}`));
    await open();
    const welcome = vscode.window.tabGroups.activeTabGroup.activeTab;
    await new Promise((r) => setTimeout(r, WALKTHROUGH_REOPEN_MS));
    if (!this.disposed && welcome && vscode.window.tabGroups.activeTabGroup.activeTab === welcome) await open();
  }

  /** A stored key, but Poe refuses it or cannot be reached at start-up: say so instead of showing "running". */
  private reportStartupProblem(): void {
    const p = this.balance.problem;
    if (!p || !this.keys.poeKey) return;
    if (p.kind === 'key-rejected') {
      void this.notifier.show(
        'error',
        `Poe rejected the stored API key: requests will fail until you set a valid one. ${p.message}`,
        ACTIONS.setKey,
        ACTIONS.getKey,
      );
    } else if (p.kind === 'unreachable') {
      void this.notifier.show(
        'warning',
        `Poe proxy: can't reach Poe, so requests will fail until it answers. ${p.message}`,
        ACTIONS.retry,
        ACTIONS.baseUrlSetting,
      );
    }
  }

  /** Offers once (remembered in globalState) to store POE_API_KEY from the environment. */
  private async offerEnvKey(): Promise<void> {
    const envKey = apiKeyFromEnv(process.env);
    if (!envKey || this.keys.poeKey || this.extension.globalState.get<boolean>(ENV_KEY_OFFERED)) return;
    registerSecret(envKey);
    await this.extension.globalState.update(ENV_KEY_OFFERED, true);
    const answer = await vscode.window.showInformationMessage(
      "Poe: POE_API_KEY is set in VS Code's environment. Check it with Poe and keep it in VS Code's secret storage as your Poe API key?",
      'Use It',
      'No',
    );
    if (answer === 'Use It') await vscode.commands.executeCommand('poeProxy.setApiKey', envKey);
  }

  private updateContextKeys(): void {
    const s = this.controller.state;
    const set = (key: string, value: unknown): void => void vscode.commands.executeCommand('setContext', key, value).then(undefined, () => undefined);
    set('poeProxy.state', s.kind);
    set('poeProxy.running', s.kind === 'running');
    set('poeProxy.served', s.kind === 'running' || s.kind === 'external');
    set('poeProxy.hasKey', Boolean(this.keys.poeKey));
    set('poeProxy.hasAccessKey', Boolean(this.keys.localAccessKey));
  }

  /** Stops the proxy (in-flight streams get a short grace) and flushes the ledger. */
  async shutdown(): Promise<void> {
    await this.controller.shutdown();
    await this.ledger.flush().catch(() => undefined);
  }

  dispose(): void {
    this.disposed = true;
    this.disposables.dispose();
  }
}
