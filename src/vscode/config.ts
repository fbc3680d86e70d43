/**
 * Typed view of the `poeProxy.*` settings, mapped onto the core ProxyConfig with makeConfig (so the
 * defaults come from DEFAULT_CONFIG only). Proxy settings are read with `inspect()` taking only the
 * user (global) value or the default: a workspace cannot redirect the key or weaken the guards.
 */
import * as vscode from 'vscode';
import { makeConfig, type ProxyConfig } from '../core/store/config';
import { accessKeyRequired, changedKeys, diffValues, readSettings, SECTION, type Inspected } from './settings';

export interface ConfigChange {
  /** Keys below `poeProxy.` that changed. */
  keys: string[];
}

export class Config implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<ConfigChange>();
  readonly onDidChange = this.emitter.event;
  private readonly subscription: vscode.Disposable;
  private snapshot = readSettings(() => undefined);
  private warned = new Set<string>();

  constructor(
    /** Where the ledger lives (the extension's global storage). */
    readonly dataDir: string,
    private readonly logWarn: (message: string) => void = () => {},
  ) {
    this.reload();
    this.subscription = vscode.workspace.onDidChangeConfiguration((e) => {
      if (changedKeys((s) => e.affectsConfiguration(s)).length === 0) return;
      const before = this.snapshot.values;
      this.reload();
      const keys = diffValues(before, this.snapshot.values);
      if (keys.length > 0) this.emitter.fire({ keys });
    });
  }

  private reload(): void {
    const section = vscode.workspace.getConfiguration(SECTION);
    this.snapshot = readSettings((key) => section.inspect(key) as Inspected | undefined);
    for (const p of this.snapshot.problems) {
      if (this.warned.has(p)) continue;
      this.warned.add(p);
      this.logWarn(`settings: ${p}`);
    }
  }

  get autoStart(): boolean {
    return this.snapshot.autoStart;
  }

  get requireAccessKey(): boolean {
    return this.snapshot.requireAccessKey;
  }

  /** The config without the access key (that comes from SecretStorage). */
  get base(): ProxyConfig {
    return makeConfig({ ...this.snapshot.overrides, dataDir: this.dataDir });
  }

  get host(): string {
    return this.base.host;
  }

  get port(): number {
    return this.base.port;
  }

  get baseUrl(): string {
    return this.base.poeBaseUrl;
  }

  /** Whether clients must present the local access key (asked for, or host beyond loopback). */
  get accessKeyRequired(): boolean {
    return accessKeyRequired(this.host, this.requireAccessKey);
  }

  /** The full ProxyConfig for the core. */
  proxyConfig(opts: { accessKey?: string; modelsFile?: string }): ProxyConfig {
    const base = this.base;
    return makeConfig({
      ...this.snapshot.overrides,
      dataDir: this.dataDir,
      modelsFile: base.modelsFile ?? opts.modelsFile,
      accessKey: this.accessKeyRequired ? opts.accessKey : undefined,
    });
  }

  /** Writes a user-level (global) setting. */
  async setGlobal(key: string, value: unknown): Promise<void> {
    await vscode.workspace.getConfiguration(SECTION).update(key, value, vscode.ConfigurationTarget.Global);
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}
