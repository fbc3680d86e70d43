/**
 * The window's own PoeUsage (balance + points matching). It is shared with the proxy when this window
 * serves, and keeps the status bar's balance alive when another window serves the port. Its HTTP client
 * follows the base URL setting; a key change drops the old key's balance.
 */
import * as vscode from 'vscode';
import type { Logger } from '../core/log';
import { PoeUsage, type BalanceProblem } from '../core/poe/usage';
import { UpstreamClient } from '../core/poe/upstream';
import { PROXY_NAME, PROXY_VERSION } from '../core/version';

export interface BalanceOptions {
  baseUrl: string;
  getApiKey(): string | undefined;
  logger: Logger;
  balanceTtlMs: number;
  balanceTimeoutMs: number;
  pointsWaitMs: number;
}

export class BalanceService implements vscode.Disposable {
  readonly usage: PoeUsage;
  private upstream: UpstreamClient;
  private baseUrl: string;
  /** Bumped when the key or base URL changes: a fetch of an older generation is not shown. */
  private generation = 0;
  private value: number | undefined;
  private readonly emitter = new vscode.EventEmitter<number | undefined>();
  readonly onDidChange = this.emitter.event;
  /** When the balance shown was fetched (ms since the epoch), for "last good balance" in the tooltip. */
  private fetchedAt: number | undefined;
  private readonly problemEmitter = new vscode.EventEmitter<BalanceProblem | undefined>();
  /** A balance fetch failed for a new reason, or succeeded after failing. */
  readonly onDidChangeProblem = this.problemEmitter.event;
  private readonly subs: Array<{ dispose(): void }>;

  constructor(private readonly opts: BalanceOptions) {
    this.baseUrl = opts.baseUrl;
    this.upstream = this.makeUpstream(opts.baseUrl);
    this.usage = new PoeUsage({
      fetchJson: async (path, signal) => {
        const r = await this.upstream.getJson(path, signal);
        return { status: r.status, body: r.body };
      },
      balanceTtlMs: opts.balanceTtlMs,
      balanceTimeoutMs: opts.balanceTimeoutMs,
      pointsWaitMs: opts.pointsWaitMs,
      logger: opts.logger,
    });
    this.subs = [this.usage.onDidChangeBalance((v) => this.set(v)), this.usage.onDidChangeBalanceProblem((p) => this.problemEmitter.fire(p))];
  }

  /** Why the last fetch failed (key rejected, Poe unreachable, …); `undefined` once one succeeds. */
  get problem(): BalanceProblem | undefined {
    return this.opts.getApiKey() ? this.usage.balanceProblem() : undefined;
  }

  /** When the balance shown was fetched from Poe. */
  get lastFetchedAt(): number | undefined {
    return this.value === undefined ? undefined : this.fetchedAt;
  }

  /** The last known balance for the current key, if any. */
  get balance(): number | undefined {
    return this.value;
  }

  /** Fetches the balance (from cache when fresh unless `force`). */
  async refresh(force = false): Promise<number | undefined> {
    if (!this.opts.getApiKey()) {
      this.set(undefined);
      return undefined;
    }
    const gen = this.generation;
    const v = await this.usage.getBalance(force ? { maxAgeMs: 0 } : {});
    if (gen !== this.generation) return this.value;
    if (v !== undefined) this.set(v);
    return v;
  }

  /** The key changed (set, cleared, or changed in another window). */
  keyChanged(): void {
    this.generation++;
    this.set(undefined);
    if (this.opts.getApiKey()) void this.refresh(true);
  }

  setBaseUrl(url: string): void {
    if (url === this.baseUrl) return;
    this.baseUrl = url;
    const old = this.upstream;
    this.upstream = this.makeUpstream(url);
    old.dispose();
    this.keyChanged();
  }

  private set(v: number | undefined): void {
    if (v !== undefined) this.fetchedAt = this.usage.cachedBalance()?.fetchedAt ?? Date.now();
    if (v === this.value) return;
    this.value = v;
    this.emitter.fire(v);
  }

  private makeUpstream(baseUrl: string): UpstreamClient {
    return new UpstreamClient({
      baseUrl,
      getApiKey: this.opts.getApiKey,
      headersTimeoutMs: 15_000,
      idleTimeoutMs: 15_000,
      userAgent: `${PROXY_NAME}/${PROXY_VERSION}`,
    });
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.usage.dispose();
    this.problemEmitter.dispose();
    this.upstream.dispose();
    this.emitter.dispose();
  }
}
