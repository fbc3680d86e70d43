/**
 * The Poe API key and the optional local access key, kept in SecretStorage (never in settings, logs,
 * the webview or the ledger). Values are cached in memory because the proxy asks for the key
 * synchronously on every request; `secrets.onDidChange` keeps the cache in step with other windows.
 */
import * as vscode from 'vscode';
import type { Logger } from '../core/log';
import { registerSecret } from '../core/log';
import { generateAccessKey } from '../core/http/security';
import { UpstreamClient } from '../core/poe/upstream';
import { PROXY_NAME, PROXY_VERSION } from '../core/version';

export const API_KEY_SECRET = 'poeProxy.apiKey';
export const ACCESS_KEY_SECRET = 'poeProxy.accessKey';

export type KeyName = 'apiKey' | 'accessKey';

export class KeyStore implements vscode.Disposable {
  private apiKey: string | undefined;
  private accessKey: string | undefined;
  private readonly emitter = new vscode.EventEmitter<KeyName>();
  /** Fires when a key changed, in this window or another one. */
  readonly onDidChange = this.emitter.event;
  private readonly subscription: vscode.Disposable;
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly logger: Logger,
  ) {
    this.subscription = secrets.onDidChange((e) => {
      if (e.key === API_KEY_SECRET) void this.reload('apiKey');
      else if (e.key === ACCESS_KEY_SECRET) void this.reload('accessKey');
    });
  }

  /** Reads both keys once (later calls share the first read). */
  load(): Promise<void> {
    this.loaded ??= Promise.all([this.reload('apiKey', false), this.reload('accessKey', false)]).then(() => undefined);
    return this.loaded;
  }

  /** The Poe API key, synchronously (undefined until `load()` finished or when none is stored). */
  get poeKey(): string | undefined {
    return this.apiKey;
  }

  get localAccessKey(): string | undefined {
    return this.accessKey;
  }

  async setPoeKey(key: string): Promise<void> {
    const k = key.trim();
    registerSecret(k);
    await this.secrets.store(API_KEY_SECRET, k);
    this.update('apiKey', k);
  }

  async clearPoeKey(): Promise<void> {
    await this.secrets.delete(API_KEY_SECRET);
    this.update('apiKey', undefined);
  }

  /** Creates and stores a fresh local access key. */
  async generateAccessKey(): Promise<string> {
    const k = generateAccessKey();
    registerSecret(k);
    await this.secrets.store(ACCESS_KEY_SECRET, k);
    this.update('accessKey', k);
    return k;
  }

  private async reload(which: KeyName, fire = true): Promise<void> {
    let value: string | undefined;
    try {
      value = (await this.secrets.get(which === 'apiKey' ? API_KEY_SECRET : ACCESS_KEY_SECRET)) || undefined;
    } catch (err) {
      this.logger.error(`cannot read the ${which === 'apiKey' ? 'Poe API key' : 'access key'} from the secret storage: ${(err as Error).message}`);
      return;
    }
    registerSecret(value);
    if (fire) this.update(which, value);
    else if (which === 'apiKey') this.apiKey = value;
    else this.accessKey = value;
  }

  private update(which: KeyName, value: string | undefined): void {
    const old = which === 'apiKey' ? this.apiKey : this.accessKey;
    if (old === value) return;
    if (which === 'apiKey') this.apiKey = value;
    else this.accessKey = value;
    this.emitter.fire(which);
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}

export type KeyCheck = { ok: true; balance: number } | { ok: false; message: string; status?: number; unreachable?: boolean };

/**
 * Checks a candidate key against Poe's balance endpoint (`GET {base}/usage/current_balance`) before it
 * is stored. The key is only sent to the configured Poe base URL.
 */
export async function checkPoeKey(baseUrl: string, key: string, timeoutMs = 15_000): Promise<KeyCheck> {
  const candidate = key.trim();
  if (!candidate) return { ok: false, message: 'The key is empty.' };
  if (/\s/.test(candidate)) return { ok: false, message: 'The key contains spaces; paste only the key from https://poe.com/api_key.' };
  const client = new UpstreamClient({
    baseUrl,
    getApiKey: () => candidate,
    headersTimeoutMs: timeoutMs,
    idleTimeoutMs: timeoutMs,
    userAgent: `${PROXY_NAME}/${PROXY_VERSION}`,
  });
  try {
    const res = await client.getJson('/usage/current_balance', AbortSignal.timeout(timeoutMs));
    const value = (res.body as { current_point_balance?: unknown } | null)?.current_point_balance;
    if (res.status >= 200 && res.status < 300 && typeof value === 'number' && Number.isFinite(value)) {
      return { ok: true, balance: value };
    }
    const said = poeMessage(res.body);
    if (res.status === 401 || res.status === 403) {
      return { ok: false, status: res.status, message: `Poe rejected the key (HTTP ${res.status})${said ? `: ${said}` : '.'}` };
    }
    return { ok: false, status: res.status, message: `Poe's balance endpoint answered HTTP ${res.status}${said ? `: ${said}` : ' without a balance.'}` };
  } catch (err) {
    // The connection error already says "cannot reach Poe at <origin>: <code>"; do not say it twice.
    const why = (err as Error).message;
    return { ok: false, unreachable: true, message: /^cannot reach Poe/i.test(why) ? `C${why.slice(1)}.` : `Cannot reach Poe at ${baseUrl}: ${why}.` };
  } finally {
    client.dispose();
  }
}

/** The human-readable message in an error body from Poe (OpenAI style, FastAPI style or plain). */
export function poeMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return body.trim().slice(0, 300) || undefined;
  if (!body || typeof body !== 'object') return undefined;
  const b = body as { error?: unknown; detail?: unknown; message?: unknown };
  if (b.error && typeof b.error === 'object' && typeof (b.error as { message?: unknown }).message === 'string') {
    return (b.error as { message: string }).message;
  }
  if (typeof b.error === 'string') return b.error;
  if (typeof b.detail === 'string') return b.detail;
  if (typeof b.message === 'string') return b.message;
  return undefined;
}
