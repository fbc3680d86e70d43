/**
 * The engine: the services one proxy runs on (config, registry, upstream, usage, rate limiter, retry
 * ladder, spend, reconciler) and the two things every request goes through (`admit`, `record`). Both
 * front ends hold one: the HTTP server (src/core/http/server.ts) and VS Code's language-model provider
 * (in process); the CLI and the VS Code window each build exactly one.
 */
import type { ChatServices } from './exchange/chat';
import type { ProxyConfig } from './store/config';
import { SpendTracker, startOfLocalMonth } from './store/budget';
import type { Ledger, LedgerCorrection, LedgerEntry } from './store/ledger';
import { PointsReconciler } from './poe/reconcile';
import type { Logger } from './log';
import { registerSecret } from './log';
import { rateLimitError, RateLimiter } from './rateLimit';
import type { ModelRegistry } from './store/registry';
import { LadderMemory } from './poe/retryLadder';
import type { TokenCounter } from './tokens';
import { UpstreamClient } from './poe/upstream';
import { PoeUsage } from './poe/usage';
import { notifyAll } from './listeners';
import { PROXY_NAME, PROXY_VERSION } from './version';

export interface EngineOptions {
  config: ProxyConfig;
  registry: ModelRegistry;
  getApiKey(): string | undefined;
  logger: Logger;
  tokens: TokenCounter;
  ledger?: Ledger;
  /** Shared usage service (the status bar reads the same balance); one is created (and owned) when absent. */
  usage?: PoeUsage;
}

type Listener<T> = (value: T) => void;

export class Engine {
  private configValue: ProxyConfig;
  /** The one place the registry is kept: every front end reads it from here. */
  private registryValue: ModelRegistry;
  private upstreamValue: UpstreamClient;
  readonly usage: PoeUsage;
  private readonly ownsUsage: boolean;
  private readonly limiter: RateLimiter;
  readonly ladder = new LadderMemory();
  readonly tokens: TokenCounter;
  readonly logger: Logger;
  readonly getApiKey: () => string | undefined;
  private readonly ledger: Ledger | undefined;
  private readonly startedAt = Date.now();
  private readonly finishListeners = new Set<Listener<LedgerEntry>>();
  private readonly correctListeners = new Set<Listener<LedgerCorrection>>();
  /** Today's and this month's spend (budgets, status bar), kept in memory. */
  readonly spend = new SpendTracker();
  /** Books the actual points of estimated requests later; absent without a ledger. */
  readonly reconciler: PointsReconciler | undefined;
  /** Resolves once the spend and the reconciler were seeded from the ledger. */
  readonly seeded: Promise<void>;
  private disposed = false;

  constructor(opts: EngineOptions) {
    this.configValue = opts.config;
    this.registryValue = opts.registry;
    this.logger = opts.logger;
    this.tokens = opts.tokens;
    this.getApiKey = opts.getApiKey;
    this.ledger = opts.ledger;
    this.upstreamValue = this.makeUpstream(opts.config);
    this.ownsUsage = !opts.usage;
    this.usage = opts.usage ?? createUsageService(() => this.upstreamValue, opts.config, opts.logger);
    this.limiter = new RateLimiter(opts.config.rateLimit);
    registerSecret(opts.config.accessKey); // log sinks and error messages redact it, whoever built the config
    const ledger = opts.ledger;
    this.reconciler = ledger
      ? new PointsReconciler({ usage: this.usage, correct: (c) => this.correct(c), maxAgeMs: opts.config.reconcileMaxAgeMs, logger: opts.logger })
      : undefined;
    this.seeded = ledger ? this.seedFromLedger(ledger) : Promise.resolve();
  }

  get config(): ProxyConfig {
    return this.configValue;
  }

  get registry(): ModelRegistry {
    return this.registryValue;
  }

  get upstream(): UpstreamClient {
    return this.upstreamValue;
  }

  /**
   * One ledger read at start: this month's spend and the estimates still to reconcile. Entries this engine
   * records itself (time ≥ its start) are counted live, so they are skipped here.
   */
  private async seedFromLedger(ledger: Ledger): Promise<void> {
    const since = Math.min(startOfLocalMonth(this.startedAt).getTime(), this.startedAt - this.configValue.reconcileMaxAgeMs);
    const started = this.startedAt;
    const earlier = (await ledger.read({ since: new Date(since) })).filter((e) => Date.parse(e.time) < started);
    for (const e of earlier) this.spend.add(e);
    this.reconciler?.seed(earlier);
  }

  /** The reconciler found an estimate's actual points: appended to the ledger, moved in the totals. */
  private correct(c: LedgerCorrection): void {
    this.ledger?.appendCorrection(c);
    this.spend.correct(c.time, c.estimate, c.points);
    this.logger.info(`points for ${c.id}: ${c.points} (replaces the estimate ${c.estimate})`);
    notifyAll(this.correctListeners, c, this.logger, 'correction');
  }

  /** Fires when an estimated request's actual points were booked. */
  onDidCorrectPoints(listener: Listener<LedgerCorrection>): { dispose(): void } {
    this.correctListeners.add(listener);
    return { dispose: () => this.correctListeners.delete(listener) };
  }

  /** Fires for every request this engine recorded, whichever front end it came through. */
  onDidFinishRequest(listener: Listener<LedgerEntry>): { dispose(): void } {
    this.finishListeners.add(listener);
    return { dispose: () => this.finishListeners.delete(listener) };
  }

  /**
   * Applies new settings (and a new registry, when given). A new Poe base URL gets a new upstream client;
   * the socket's own settings (host, port, allowed hosts) are the HTTP front end's.
   */
  reconfigure(config: ProxyConfig, registry?: ModelRegistry): void {
    const baseChanged = config.poeBaseUrl !== this.configValue.poeBaseUrl;
    this.configValue = config;
    if (registry) this.registryValue = registry;
    this.limiter.update(config.rateLimit);
    registerSecret(config.accessKey);
    if (baseChanged) {
      this.upstreamValue.dispose();
      this.upstreamValue = this.makeUpstream(config);
    }
  }

  /**
   * Ends every request in flight to Poe (the HTTP front end stopping: what still runs after its grace
   * period reads for clients that are gone); later requests get a fresh connection pool.
   */
  cutUpstream(): void {
    if (this.disposed) return;
    this.upstreamValue.dispose();
    this.upstreamValue = this.makeUpstream(this.configValue);
  }

  /** Takes a rate-limit slot for `rateKey`, or records the refusal (as `tool`'s) and throws the 429; returns the release. */
  admit(rateKey: string, endpoint: LedgerEntry['endpoint'], tool = rateKey): () => void {
    const slot = this.limiter.take(rateKey);
    if (!slot.ok) {
      this.record(rejectedEntry(tool, 'rate_limited', 429, endpoint), false);
      throw rateLimitError(slot);
    }
    return () => slot.release();
  }

  /** A request that reached Poe gets its own ledger line; one answered by the proxy alone is only counted. */
  record(entry: LedgerEntry, sentToPoe: boolean): void {
    const pts = entry.points === null ? '-' : `${entry.points}${entry.pointsEstimated ? ' est.' : ''}`;
    this.logger.info(
      `${entry.endpoint} ${entry.model || '?'} ${entry.status} ${entry.httpStatus} ${entry.durationMs}ms tokens ${entry.tokensIn}/${entry.tokensOut} points ${pts} retries ${entry.retries} client ${entry.client}${entry.error ? ` — ${entry.error}` : ''}`,
    );
    if (sentToPoe) this.ledger?.append(entry);
    else this.ledger?.countRefusedEntry(entry);
    this.spend.add(entry);
    this.reconciler?.add(entry);
    notifyAll(this.finishListeners, entry, this.logger, 'request');
  }

  /** A refusal before any exchange ran (the HTTP gate: access key, host, origin, size, format): counted, not written. */
  countRefused(client: string, reason: 'rate_limit' | 'gate'): void {
    this.ledger?.countRefused({ client, reason });
  }

  /**
   * What an exchange runs on, as of now (a later `reconfigure` reaches the next request). The HTTP front
   * end adds `isShuttingDown`; requests that do not come over HTTP use `inProcessServices`.
   */
  services(frontEnd: Pick<ChatServices, 'isShuttingDown'> = {}): ChatServices {
    return {
      config: this.configValue,
      registry: this.registryValue,
      upstream: this.upstreamValue,
      usage: this.usage,
      tokens: this.tokens,
      ladder: this.ladder,
      logger: this.logger,
      getApiKey: this.getApiKey,
      record: (e, sentToPoe) => this.record(e, sentToPoe),
      spend: this.spend,
      ...frontEnd,
    };
  }

  /**
   * The chat pipeline's services for requests that do not come over HTTP (VS Code's language-model
   * provider, via inProcess.ts): same guards, ledger and onDidFinishRequest listeners, and the same rate limit.
   */
  inProcessServices(): ChatServices {
    return { ...this.services(), admit: (client) => this.admit(client, 'chat') };
  }

  /** Releases the upstream connections, the reconciler's timers and the usage service it created. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.upstreamValue.dispose();
    this.reconciler?.dispose();
    if (this.ownsUsage) this.usage.dispose();
  }

  private makeUpstream(config: ProxyConfig): UpstreamClient {
    return new UpstreamClient({
      baseUrl: config.poeBaseUrl,
      getApiKey: this.getApiKey,
      headersTimeoutMs: config.upstreamHeadersTimeoutMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      userAgent: `${PROXY_NAME}/${PROXY_VERSION}`,
    });
  }
}

/** A usage service on the engine's current upstream client (it is replaced on a base URL change or a stop). */
function createUsageService(upstream: () => UpstreamClient, config: ProxyConfig, logger: Logger): PoeUsage {
  return new PoeUsage({
    fetchJson: async (path, signal) => {
      const r = await upstream().getJson(path, signal);
      return { status: r.status, body: r.body };
    },
    balanceTtlMs: config.balanceTtlMs,
    balanceTimeoutMs: config.balanceTimeoutMs,
    pointsWaitMs: config.pointsWaitMs,
    logger,
  });
}

function rejectedEntry(client: string, status: LedgerEntry['status'], httpStatus: number, endpoint: LedgerEntry['endpoint'] = 'chat'): LedgerEntry {
  return {
    time: new Date().toISOString(),
    id: '',
    model: '',
    endpoint,
    stream: false,
    status,
    httpStatus,
    tokensIn: 0,
    tokensOut: 0,
    points: null,
    pointsEstimated: false,
    balanceAfter: null,
    durationMs: 0,
    clipped: false,
    retries: 0,
    client,
  };
}
