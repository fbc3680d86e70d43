/**
 * Owns the proxy's socket in this window: start, stop, restart, restarts for host/port changes, and the
 * several-windows case (only one window serves the port; the others show "served by another window"
 * and take over when that window goes away). The services it serves with are the window's engine
 * (windowEngine.ts), which outlives every start and stop.
 */
import * as vscode from 'vscode';
import { isLoopbackHost, type ProxyConfig } from '../core/store/config';
import { ProxyError } from '../core/http/errors';
import type { LedgerCorrection, LedgerEntry } from '../core/store/ledger';
import { ProxyServer } from '../core/http/server';
import { RegistryError, type ModelRegistry } from '../core/store/registry';
import type { BalanceService } from './balance';
import type { Config } from './config';
import { probeHealth } from './health';
import type { KeyStore } from './keyStore';
import type { ChannelLogger } from './logger';
import { DisposableStore } from './registration';
import { RESTART_KEYS } from './settings';
import type { WindowEngine } from './windowEngine';

export type ProxyStateKind = 'stopped' | 'starting' | 'running' | 'external' | 'error';

export interface ProxyState {
  kind: ProxyStateKind;
  /** Root URL of the proxy serving the port (ours, or another window's for `external`), without /v1. */
  url?: string;
  port?: number;
  /** What went wrong (`error`), or who serves the port (`external`). */
  message?: string;
  /** For `error`: what the user can do about it (another port, fix the models file, read the logs). */
  fix?: ErrorFix;
}

export type ErrorFix = 'port' | 'models' | 'logs';

export interface ControllerDeps {
  /** globalState: shared by every window of the profile; holds the "stopped everywhere" flag. */
  shared: vscode.Memento;
  config: Config;
  keys: KeyStore;
  balance: BalanceService;
  logger: ChannelLogger;
  engine: WindowEngine;
}

/** globalState key: the user stopped the proxy (in any window); every window stays stopped until a Start. */
export const STOPPED_EVERYWHERE = 'poeProxy.stoppedEverywhere';
/** How often a window looks at the shared stopped flag (set or cleared by another window). */
export const SHARED_STOP_POLL_MS = 2_000;
/** How often a window that does not serve checks whether the serving window went away. */
export const TAKEOVER_INTERVAL_MS = 5_000;
/** In-flight streams get this long when VS Code shuts the extension down. */
export const DEACTIVATE_GRACE_MS = 2_000;

export class ProxyController implements vscode.Disposable {
  private front: ProxyServer | undefined;
  /** The engine's events, relayed while this window serves. */
  private frontSubs: DisposableStore | undefined;
  private stateValue: ProxyState = { kind: 'stopped' };
  private readonly stateEmitter = new vscode.EventEmitter<ProxyState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private readonly requestEmitter = new vscode.EventEmitter<LedgerEntry>();
  /** A request through this window's proxy finished (any outcome). */
  readonly onDidFinishRequest = this.requestEmitter.event;
  private readonly correctionEmitter = new vscode.EventEmitter<LedgerCorrection>();
  /** The actual points of an estimated request were booked (the spend and maybe the last request changed). */
  readonly onDidCorrectPoints = this.correctionEmitter.event;
  private lastEntry: LedgerEntry | undefined;
  /** Whether the user (or autoStart) wants the proxy up; `Stop` clears it. */
  private wanted = false;
  private ops: Promise<unknown> = Promise.resolve();
  private takeoverTimer: ReturnType<typeof setInterval> | undefined;
  private readonly sharedStopTimer: ReturnType<typeof setInterval>;
  /** This window is stopped because of the shared flag (its own Stop, or another window's). */
  private stoppedEverywhere = false;
  private disposed = false;
  private readonly subs = new DisposableStore();

  constructor(private readonly deps: ControllerDeps) {
    this.stoppedEverywhere = deps.shared.get<boolean>(STOPPED_EVERYWHERE) === true;
    this.sharedStopTimer = setInterval(() => void this.followSharedStop(), SHARED_STOP_POLL_MS);
    this.sharedStopTimer.unref?.();
    this.subs.add(deps.config.onDidChange((e) => this.applySettings(e.keys)));
    this.subs.add(
      deps.keys.onDidChange((which) => {
        if (which === 'accessKey') this.applySettings([]);
      }),
    );
  }

  get state(): ProxyState {
    return { ...this.stateValue };
  }

  /** The running server of this window, if it serves. */
  get server(): ProxyServer | undefined {
    return this.front;
  }

  /** The models the running server serves (the engine's). */
  get registry(): ModelRegistry | undefined {
    return this.front?.engine.registry;
  }

  /** The config the running server uses (the engine's). */
  get activeConfig(): ProxyConfig | undefined {
    return this.front?.engine.config;
  }

  get lastRequest(): LedgerEntry | undefined {
    return this.lastEntry;
  }

  get isWanted(): boolean {
    return this.wanted;
  }

  start(): Promise<void> {
    this.wanted = true;
    return this.queue(() => this.doStart());
  }

  /** Whether the user stopped the proxy for every window (autostart waits for a Start). */
  get isStoppedEverywhere(): boolean {
    return this.stoppedEverywhere;
  }

  /** The Stop command: stops this window and, through the shared flag, every other one (no takeover). */
  async stopEverywhere(): Promise<void> {
    this.stoppedEverywhere = true;
    await this.deps.shared.update(STOPPED_EVERYWHERE, true);
    await this.stop();
  }

  /** The Start command: clears the shared flag (the other windows follow) and starts here. */
  async startEverywhere(): Promise<void> {
    this.stoppedEverywhere = false;
    await this.deps.shared.update(STOPPED_EVERYWHERE, undefined);
    await this.start();
  }

  /** Follows a Stop or Start pressed in another window. */
  private async followSharedStop(): Promise<void> {
    if (this.disposed) return;
    const flag = this.deps.shared.get<boolean>(STOPPED_EVERYWHERE) === true;
    if (flag && !this.stoppedEverywhere) {
      this.stoppedEverywhere = true;
      if (this.wanted) {
        this.deps.logger.info('stopped in another window: stopping here too');
        await this.stop();
      }
    } else if (!flag && this.stoppedEverywhere) {
      this.stoppedEverywhere = false;
      this.deps.logger.info('started in another window: starting here too');
      await this.start();
    }
  }

  stop(graceMs?: number): Promise<void> {
    this.wanted = false;
    return this.queue(() => this.doStop(graceMs));
  }

  restart(): Promise<void> {
    this.wanted = true;
    return this.queue(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  /**
   * The models changed (Pick Models, an edit of the models file): served models are read again now (a
   * failure is shown, the previous ones stay); otherwise on the engine's next use.
   */
  reloadModels(): Promise<void> {
    return this.queue(async () => {
      if (!this.front) {
        this.deps.engine.invalidateModels();
        return;
      }
      const registry = await this.deps.engine.reloadModelsOrReport();
      if (registry) this.deps.logger.info(`models reloaded: ${registry.models.length} from ${registry.source}`);
    });
  }

  /** Resolves once every queued start/stop/reconfigure has finished. */
  idle(): Promise<void> {
    return this.queue(async () => {});
  }

  private queue(op: () => Promise<void>): Promise<void> {
    const next = this.ops.then(op, op);
    this.ops = next.catch((err) => this.deps.logger.error(`proxy controller: ${(err as Error)?.stack ?? err}`));
    return next;
  }

  private setState(s: ProxyState): void {
    const prev = this.stateValue;
    this.stateValue = s;
    if (prev.kind !== s.kind || prev.url !== s.url || prev.message !== s.message) this.stateEmitter.fire({ ...s });
  }

  // ---- start / stop ---------------------------------------------------------------------------

  private async doStart(retryOnRace = true): Promise<void> {
    if (this.disposed || this.front) return;
    this.stopTakeover();
    this.setState({ kind: 'starting' });
    await this.ensureAccessKey();
    const engine = this.deps.engine;
    let registry: ModelRegistry;
    try {
      // Each start reads the models file again (it may have been edited outside VS Code).
      engine.applySettings();
      registry = await engine.reloadModels();
    } catch (err) {
      this.fail(
        err instanceof RegistryError ? `Invalid models file: ${err.message}` : `Cannot start the proxy: ${(err as Error).message}`,
        err instanceof RegistryError ? 'models' : 'logs',
      );
      return;
    }
    const config = engine.core.config;
    const front = new ProxyServer(engine.core);
    try {
      await front.listen();
    } catch (err) {
      await this.onListenError(err as NodeJS.ErrnoException, config, retryOnRace);
      return;
    }
    if (this.disposed || !this.wanted) {
      // Stopped while we were starting.
      await front.close().catch(() => undefined);
      this.setState({ kind: 'stopped' });
      return;
    }
    this.front = front;
    // Requests of this window's engine (HTTP, and Copilot Chat's in process) reach the status bar while it serves.
    const subs = new DisposableStore(this.deps.logger);
    subs.add(
      engine.core.onDidFinishRequest((entry) => {
        this.lastEntry = entry;
        this.requestEmitter.fire(entry);
      }),
    );
    subs.add(
      engine.core.onDidCorrectPoints((c) => {
        const last = this.lastEntry;
        if (last && last.id === c.id && last.time === c.time) {
          this.lastEntry = { ...last, points: c.points, pointsEstimated: false, replacedEstimate: c.estimate, queryId: c.queryId };
        }
        this.correctionEmitter.fire(c);
      }),
    );
    this.frontSubs = subs;
    const url = front.url!;
    this.deps.logger.info(
      `listening on ${url} (OpenAI base URL ${url}/v1), ${registry.models.length} models from ${registry.source}, upstream ${config.poeBaseUrl}${config.accessKey ? ', access key required' : ''}`,
    );
    this.setState({ kind: 'running', url, port: front.address?.port });
    if (this.deps.keys.poeKey) void this.deps.balance.refresh();
    if (!isLoopbackHost(config.host)) {
      // The core refuses this without an access key; with one it still deserves the user's attention.
      void vscode.window.showWarningMessage(
        `Poe proxy is listening on ${config.host}: other machines on your network can reach it. Every request must carry the local access key ("Poe: Copy Access Key"). Set poeProxy.host to 127.0.0.1 to keep it local.`,
      );
    }
  }

  private async onListenError(e: NodeJS.ErrnoException, config: ProxyConfig, retryOnRace: boolean): Promise<void> {
    const where = `${config.host}:${config.port}`;
    if (e.code === 'EADDRINUSE') {
      const probe = await probeHealth(config.host, config.port);
      if (probe.kind === 'poe-proxy') {
        this.deps.logger.info(
          `port ${config.port} is served by another Poe proxy (pid ${probe.pid ?? '?'}, probably another VS Code window); this window uses it`,
        );
        this.setState({ kind: 'external', url: probe.url, port: config.port, message: `Served by another window (pid ${probe.pid ?? '?'})` });
        this.startTakeover();
        return;
      }
      if (probe.kind === 'nothing' && retryOnRace) {
        // The other proxy went away between our listen and the probe: try once more.
        return this.doStart(false);
      }
      this.fail(`Port ${config.port} on ${config.host} is in use by another program (${probe.detail}). Choose another port.`, 'port');
      return;
    }
    if (e instanceof ProxyError) {
      this.fail(e.message, 'logs');
      return;
    }
    if (e.code === 'EACCES') {
      this.fail(`Not allowed to listen on ${where}; choose a port above 1024.`, 'port');
      return;
    }
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') {
      this.fail(`Cannot listen on ${where}: this machine has no such address (poeProxy.host).`, 'logs');
      return;
    }
    this.fail(`Cannot listen on ${where}: ${e.message}`, 'logs');
  }

  private fail(message: string, action: ErrorFix): void {
    this.deps.logger.error(message);
    this.setState({ kind: 'error', message, fix: action });
    if (this.disposed) return;
    const actions = action === 'port' ? ['Use Another Port', 'Show Logs'] : action === 'models' ? ['Open Models File', 'Show Logs'] : ['Show Logs'];
    void vscode.window.showErrorMessage(`Poe proxy: ${message}`, ...actions).then((picked) => {
      if (picked === 'Use Another Port') void vscode.commands.executeCommand('poeProxy.changePort');
      else if (picked === 'Open Models File') void vscode.commands.executeCommand('poeProxy.openModelsFile');
      else if (picked === 'Show Logs') this.deps.logger.show();
    });
  }

  private async doStop(graceMs?: number): Promise<void> {
    this.stopTakeover();
    const front = this.front;
    this.front = undefined;
    this.frontSubs?.dispose();
    this.frontSubs = undefined;
    if (front) {
      const grace = graceMs ?? front.engine.config.shutdownGraceMs;
      const active = front.activeRequests;
      if (active > 0) this.deps.logger.info(`stopping: ${active} request(s) in flight get up to ${Math.round(grace / 1000)} s`);
      try {
        await front.close(grace);
      } catch (err) {
        this.deps.logger.error(`error while stopping the proxy: ${(err as Error).message}`);
      }
      this.deps.logger.info('stopped');
    }
    this.setState({ kind: 'stopped' });
  }

  // ---- several windows ------------------------------------------------------------------------

  private startTakeover(): void {
    this.stopTakeover();
    this.takeoverTimer = setInterval(() => void this.checkTakeover(), TAKEOVER_INTERVAL_MS);
    this.takeoverTimer.unref?.();
  }

  private stopTakeover(): void {
    if (this.takeoverTimer) clearInterval(this.takeoverTimer);
    this.takeoverTimer = undefined;
  }

  private async checkTakeover(): Promise<void> {
    if (this.stateValue.kind !== 'external' || !this.wanted || this.disposed) return;
    const { host, port } = this.deps.config.base;
    const probe = await probeHealth(host, port);
    if (probe.kind !== 'nothing') return;
    // The port may be free because another window's Stop freed it: its shared flag (written before it
    // stopped) wins, even when this window's poll of the flag has not run since.
    await this.followSharedStop();
    if (this.stateValue.kind === 'external' && this.wanted) {
      this.deps.logger.info(`the proxy on port ${port} went away; this window takes over`);
      await this.queue(() => this.doStart());
    }
  }

  // ---- live settings --------------------------------------------------------------------------

  private applySettings(keys: string[]): void {
    if (keys.includes('baseURL')) this.deps.balance.setBaseUrl(this.deps.config.baseUrl);
    if (!this.wanted || this.disposed) return;
    void this.queue(async () => {
      const needsRestart = keys.some((k) => RESTART_KEYS.includes(k));
      if (!this.front) {
        // Not serving: a new port/host (or any change after an error) is worth another try.
        if (this.stateValue.kind === 'error' || (needsRestart && this.stateValue.kind === 'external')) await this.doStart();
        return;
      }
      if (needsRestart) {
        this.deps.logger.info(`settings changed (${keys.join(', ')}): restarting`);
        await this.doStop();
        await this.doStart();
        return;
      }
      // The engine follows the settings itself (windowEngine.ts); serving needs the access key generated when now required.
      await this.ensureAccessKey();
      this.deps.engine.applySettings();
      if (keys.includes('modelsFile')) await this.deps.engine.reloadModelsOrReport();
      if (keys.length > 0) this.deps.logger.info(`settings applied: ${keys.join(', ')}`);
    });
  }

  /** The access key when one is required, generating (and announcing) one the first time. */
  private async ensureAccessKey(): Promise<string | undefined> {
    if (!this.deps.config.accessKeyRequired) return undefined;
    const existing = this.deps.keys.localAccessKey;
    if (existing) return existing;
    const key = await this.deps.keys.generateAccessKey();
    this.deps.logger.info('generated a local access key (clients must send it as Authorization: Bearer <key>)');
    void vscode.window
      .showInformationMessage(
        "Poe proxy now requires a local access key from clients. A new key was generated and stored in VS Code's secret storage.",
        'Copy Access Key',
      )
      .then((a) => {
        if (a) void vscode.commands.executeCommand('poeProxy.copyAccessKey');
      });
    return key;
  }

  /** Stops serving (giving in-flight streams `graceMs`) and releases everything. */
  async shutdown(graceMs = DEACTIVATE_GRACE_MS): Promise<void> {
    if (this.disposed) return;
    this.wanted = false;
    await this.queue(() => this.doStop(graceMs));
    this.disposed = true;
    this.stopTakeover();
    clearInterval(this.sharedStopTimer);
  }

  dispose(): void {
    void this.shutdown();
    this.subs.dispose();
    this.stateEmitter.dispose();
    this.requestEmitter.dispose();
    this.correctionEmitter.dispose();
  }
}
