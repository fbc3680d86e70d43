/**
 * Typed view of the `poeProxy.*` settings, mapped onto the core ProxyConfig with makeConfig (so the
 * defaults come from DEFAULT_CONFIG only). Proxy settings are read with `inspect()` taking only the
 * user (global) value or the default: a workspace cannot redirect the key or weaken the guards.
 */
import * as vscode from 'vscode';
import { makeConfig, type ProxyConfig } from '../core/store/config';
import { accessKeyRequired, changedKeys, diffValues, readSettings, RENAMED_SETTINGS, SECTION, type Inspected } from './settings';

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
  /** Settles once renamed settings have been moved to their new keys (see migrateRenamedSettings). */
  readonly migrated: Promise<void>;

  constructor(
    /** Where the ledger lives (the extension's global storage). */
    readonly dataDir: string,
    private readonly logWarn: (message: string) => void = () => {},
  ) {
    this.reload();
    this.migrated = migrateRenamedSettings().then(
      (moved) => moved.forEach((m) => this.logWarn(`settings: ${SECTION}.${m.from} is now ${SECTION}.${m.to}; your value was moved there`)),
      (err) => this.logWarn(`settings: could not move renamed settings: ${(err as Error)?.message ?? err}`),
    );
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

/**
 * Moves the user value of each renamed setting to its new key and removes the old key (the new key's own
 * value, if the user already set one, wins). Only the user scope: these settings are application-scoped,
 * so VS Code and this extension ignore workspace values, and a workspace's files are not ours to rewrite.
 * Until it has run, `readSettings` reads the old value in place of the new one.
 */
export async function migrateRenamedSettings(): Promise<Array<{ from: string; to: string }>> {
  const section = vscode.workspace.getConfiguration(SECTION);
  const moved: Array<{ from: string; to: string }> = [];
  for (const r of RENAMED_SETTINGS) {
    const old = section.inspect(r.from)?.globalValue;
    if (old === undefined) continue;
    if (section.inspect(r.to)?.globalValue === undefined) await section.update(r.to, old, vscode.ConfigurationTarget.Global);
    await section.update(r.from, undefined, vscode.ConfigurationTarget.Global);
    moved.push(r);
  }
  return moved;
}
