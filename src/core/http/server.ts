/**
 * The proxy's HTTP server: gatekeeping, routing, body reading, graceful stop.
 * It owns no VS Code state; the extension and the CLI construct it with their services.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { anthropicDialect, anthropicErrorBody, anthropicModelList, countTokens } from '../exchange/anthropic';
import { ChatExchange, type ChatServices } from '../exchange/chat';
import { isLoopbackHost, type ProxyConfig } from '../store/config';
import { badRequest, ProxyError, retryHeaders } from './errors';
import { SpendTracker, startOfLocalMonth } from '../store/budget';
import { localDay } from '../store/ledgerIndex';
import { clientName } from '../clientName';
import type { Ledger, LedgerCorrection, LedgerEntry } from '../store/ledger';
import { PointsReconciler } from '../poe/reconcile';
import type { Logger } from '../log';
import { PassthroughExchange, type WireDialect } from '../exchange/passthrough';
import { rateLimitError, RateLimiter } from '../rateLimit';
import type { ModelRegistry } from '../store/registry';
import { responsesDialect } from '../exchange/responses';
import { LadderMemory } from '../poe/retryLadder';
import { allowedHostValues, checkAccessKey, checkHost, checkJsonContentType, checkOrigin } from './security';
import type { TokenCounter } from '../tokens';
import { UpstreamClient } from '../poe/upstream';
import { PoeUsage } from '../poe/usage';
import { notifyAll } from '../listeners';
import { registerSecret, silentLogger } from '../log';
import { PROXY_NAME, PROXY_VERSION } from '../version';

export interface ProxyServerOptions {
  config: ProxyConfig;
  registry: ModelRegistry;
  getApiKey(): string | undefined;
  logger: Logger;
  tokens: TokenCounter;
  ledger?: Ledger;
  /** Shared usage service (the status bar reads the same balance); one is created when absent. */
  usage?: PoeUsage;
}

type Listener<T> = (value: T) => void;

export class ProxyServer {
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly inFlight = new Set<http.ServerResponse>();
  private closing = false;
  private config: ProxyConfig;
  private registry: ModelRegistry;
  private upstream: UpstreamClient;
  readonly usage: PoeUsage;
  private readonly ownsUsage: boolean;
  private limiter: RateLimiter;
  private allowedHosts: Set<string>;
  private readonly ladder = new LadderMemory();
  private readonly startedAt = Date.now();
  private readonly finishListeners = new Set<Listener<LedgerEntry>>();
  /** Responses whose refusal was already counted (so the error path does not count it again). */
  private readonly counted = new WeakSet<http.ServerResponse>();
  private readonly correctListeners = new Set<Listener<LedgerCorrection>>();
  /** Today's and this month's spend (budgets, status bar), kept in memory. */
  readonly spend = new SpendTracker();
  /** Books the actual points of estimated requests later; absent without a ledger. */
  readonly reconciler: PointsReconciler | undefined;
  /** Resolves once the spend and the reconciler were seeded from the ledger. */
  readonly seeded: Promise<void>;
  private readonly createdModels = Math.floor(Date.now() / 1000);

  constructor(private readonly opts: ProxyServerOptions) {
    this.config = opts.config;
    this.registry = opts.registry;
    this.upstream = this.makeUpstream(opts.config);
    this.ownsUsage = !opts.usage;
    this.usage = opts.usage ?? createUsageService(this.upstream, opts.config, opts.logger);
    this.limiter = new RateLimiter(opts.config.rateLimit);
    this.allowedHosts = allowedHostValues(opts.config);
    registerSecret(opts.config.accessKey); // log sinks and error messages redact it, whoever built the config
    const ledger = opts.ledger;
    this.reconciler = ledger
      ? new PointsReconciler({ usage: this.usage, correct: (c) => this.correct(c), maxAgeMs: opts.config.reconcileMaxAgeMs, logger: opts.logger })
      : undefined;
    this.seeded = ledger ? this.seedFromLedger(ledger) : Promise.resolve();
  }

  /**
   * At start, from the ledger's index and the end of its newest file: this month's spend per day and the
   * estimates still to reconcile. Entries this server records itself (time ≥ its start) are counted live,
   * so they are left out here.
   */
  private async seedFromLedger(ledger: Ledger): Promise<void> {
    const since = Math.min(startOfLocalMonth(this.startedAt).getTime(), this.startedAt - this.config.reconcileMaxAgeMs);
    const seed = await ledger.startupSeed({
      fromDay: localDay(new Date(since)),
      recentSince: new Date(this.startedAt - this.config.reconcileMaxAgeMs),
      before: new Date(this.startedAt),
    });
    for (const d of seed.days) this.spend.addDay(d.day, d.points);
    this.reconciler?.seed(seed.recent);
  }

  /** The reconciler found an estimate's actual points: appended to the ledger, moved in the totals. */
  private correct(c: LedgerCorrection): void {
    this.opts.ledger?.appendCorrection(c);
    this.spend.correct(c.time, c.estimate, c.points);
    this.opts.logger.info(`points for ${c.id}: ${c.points} (replaces the estimate ${c.estimate})`);
    notifyAll(this.correctListeners, c, this.opts.logger, 'correction');
  }

  /** Fires when an estimated request's actual points were booked. */
  onDidCorrectPoints(listener: Listener<LedgerCorrection>): { dispose(): void } {
    this.correctListeners.add(listener);
    return { dispose: () => this.correctListeners.delete(listener) };
  }

  /** Starts listening; rejects with EADDRINUSE & co. so callers can explain. */
  async listen(): Promise<AddressInfo> {
    const { host, port } = this.config;
    if (!isLoopbackHost(host) && !this.config.accessKey) {
      throw new ProxyError(
        400,
        `Refusing to listen on ${host}: binding beyond loopback exposes your Poe points to the network. Set a local access key first (VS Code: "Poe: Generate Access Key"; headless: PROXY_API_KEY).`,
        'invalid_request_error',
        'access_key_required',
      );
    }
    const { headersTimeoutMs } = this.config;
    // requireHostHeader off: a request without Host gets our own 403 (DNS-rebinding gate), not Node's bare 400.
    // The checking interval bounds how late a slowloris connection is cut (Node's default is 30 s).
    const server = http.createServer(
      {
        keepAlive: true,
        requestTimeout: 0,
        headersTimeout: headersTimeoutMs,
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeoutMs)),
        maxHeaderSize: 32 * 1024,
        requireHostHeader: false,
      },
      (req, res) => this.onRequest(req, res),
    );
    server.keepAliveTimeout = 65_000;
    server.on('connection', (s: Socket) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') socket.end(clientErrorResponse(err.code));
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.logger.error(`server error: ${err.message}`));
    this.server = server;
    const addr = server.address() as AddressInfo;
    // With port 0 (tests) the real port is known only now.
    if (this.config.port === 0) this.allowedHosts = allowedHostValues({ ...this.config, port: addr.port });
    if (!isLoopbackHost(host)) this.opts.logger.warn(`listening on ${host}:${addr.port} — reachable from the network; every request must carry the access key`);
    return addr;
  }

  get address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  get url(): string | undefined {
    const a = this.address;
    if (!a) return undefined;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  /** Applies settings that do not need a new socket (the caller restarts for host/port). */
  reconfigure(config: ProxyConfig, registry?: ModelRegistry): void {
    const baseChanged = config.poeBaseUrl !== this.config.poeBaseUrl;
    const port = this.address?.port ?? config.port;
    this.config = config;
    if (registry) this.registry = registry;
    this.limiter.update(config.rateLimit);
    this.allowedHosts = allowedHostValues({ ...config, port });
    if (baseChanged) {
      this.upstream.dispose();
      this.upstream = this.makeUpstream(config);
    }
  }

  setRegistry(registry: ModelRegistry): void {
    this.registry = registry;
  }

  onDidFinishRequest(listener: Listener<LedgerEntry>): { dispose(): void } {
    this.finishListeners.add(listener);
    return { dispose: () => this.finishListeners.delete(listener) };
  }

  get activeRequests(): number {
    return this.inFlight.size;
  }

  /**
   * Stops accepting requests, gives in-flight streams `graceMs` to finish, then ends them with an
   * error event and closes every socket.
   */
  async close(graceMs = this.config.shutdownGraceMs): Promise<void> {
    const server = this.server;
    if (!server || this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    const flushed: Promise<unknown>[] = [];
    for (const res of this.inFlight) {
      if (res.headersSent && !res.writableEnded) {
        flushed.push(new Promise((resolve) => res.once('finish', resolve).once('close', resolve)));
        res.end(shutdownFrame(res.req));
      } else if (!res.headersSent && !res.destroyed) {
        // A JSON answer still waiting for Poe: a clear 503 rather than a dropped connection.
        flushed.push(new Promise((resolve) => res.once('finish', resolve).once('close', resolve)));
        this.sendError(
          res,
          new ProxyError(503, 'The Poe proxy is shutting down; retry the request.', 'api_error', 'proxy_shutdown', null, { connection: 'close' }),
          speaksAnthropic(res.req),
        );
      }
    }
    // Let those last events reach the sockets (bounded: a client that does not read is not waited for).
    if (flushed.length) await Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, 1_000).unref())]);
    for (const s of this.sockets) s.destroy();
    await closed;
    this.upstream.dispose();
    this.reconciler?.dispose();
    if (this.ownsUsage) this.usage.dispose();
    this.server = undefined;
  }

  // ---- request handling ---------------------------------------------------------------------

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inFlight.add(res);
    res.once('close', () => this.inFlight.delete(res));
    this.route(req, res).catch((err) => {
      this.countGateRefusal(req, res, err);
      this.sendError(res, err, speaksAnthropic(req));
    });
  }

  /** A POST refused before any exchange ran (access key, host, origin, size, format): counted, not written. */
  private countGateRefusal(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    if (req.method !== 'POST' || this.counted.has(res) || !(err instanceof ProxyError) || err.status < 400 || err.status >= 500) return;
    this.opts.ledger?.countRefused({ client: clientName(req.headers), reason: err.status === 429 ? 'rate_limit' : 'gate' });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.closing) {
      res.setHeader('connection', 'close');
      throw new ProxyError(503, 'The Poe proxy is shutting down; retry in a moment.', 'api_error', 'proxy_shutdown');
    }
    checkHost(req, this.allowedHosts);
    const origin = checkOrigin(req, this.config);
    if (origin) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      // An allowed page may read the out-of-band cost and the retry advice.
      res.setHeader('access-control-expose-headers', 'x-poe-points, x-poe-points-estimated, x-poe-balance, x-poe-proxy-clipped, x-should-retry, retry-after');
    }
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    if (req.method === 'OPTIONS' && origin) {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, x-api-key, anthropic-version, anthropic-beta, x-poe-proxy-footer',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    if (path === '/health') return this.requireMethod(req, 'GET', () => this.sendJson(res, 200, this.health()));
    checkAccessKey(req, this.config);
    switch (path) {
      case '/v1/models':
      case '/models':
        return this.requireMethod(req, 'GET', () =>
          this.sendJson(res, 200, speaksAnthropic(req) ? anthropicModelList(this.registry, this.createdModels) : this.modelList()),
        );
      case '/v1/chat/completions':
      case '/chat/completions':
        return this.requireMethod(req, 'POST', () => this.chat(req, res));
      case '/v1/messages':
        return this.requireMethod(req, 'POST', () => this.passthrough(req, res, anthropicDialect(this.opts.logger)));
      case '/v1/messages/count_tokens':
        return this.requireMethod(req, 'POST', () => this.countTokens(req, res));
      case '/v1/responses':
      case '/responses':
        return this.requireMethod(req, 'POST', () => this.passthrough(req, res, responsesDialect));
      default:
        throw new ProxyError(
          404,
          `No route for ${req.method} ${path}. This proxy serves POST /v1/chat/completions, /v1/messages (Anthropic), /v1/messages/count_tokens, /v1/responses, GET /v1/models and GET /health; point your client's base URL at ${this.url ?? 'http://127.0.0.1:9876'}/v1 (Anthropic clients: without /v1).`,
          'not_found_error',
          'unknown_route',
        );
    }
  }

  private async requireMethod(req: http.IncomingMessage, method: string, then: () => unknown): Promise<void> {
    if (req.method !== method) {
      throw new ProxyError(405, `${req.url} accepts ${method} only, not ${req.method}.`, 'invalid_request_error', 'method_not_allowed', null, {
        allow: method,
      });
    }
    await then();
  }

  private chat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    return this.generation(req, res, 'chat', (body, client) => new ChatExchange(this.services(), req, res, client).run(body));
  }

  private passthrough(req: http.IncomingMessage, res: http.ServerResponse, dialect: WireDialect): Promise<void> {
    return this.generation(req, res, dialect.endpoint, (body, client) => new PassthroughExchange(this.services(), dialect, req, res, client).run(body));
  }

  /** Counting is local and free: no rate-limit slot, no ledger entry. */
  private async countTokens(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    checkJsonContentType(req);
    this.sendJson(res, 200, await countTokens(parseJson(await this.readBody(req)), this.registry, this.opts.tokens));
  }

  /** The gate every generation endpoint shares: JSON only, a rate-limit slot, the body read and parsed. */
  private async generation(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    endpoint: LedgerEntry['endpoint'],
    run: (body: unknown, client: string) => Promise<void>,
  ): Promise<void> {
    checkJsonContentType(req);
    const tool = clientName(req.headers);
    const release = this.admit(clientKey(req), endpoint, tool, res);
    try {
      await run(parseJson(await this.readBody(req)), tool);
    } finally {
      release();
    }
  }

  /** Takes a rate-limit slot for `rateKey`, or records the refusal (as `tool`'s) and throws the 429; returns the release. */
  private admit(rateKey: string, endpoint: LedgerEntry['endpoint'], tool = rateKey, res?: http.ServerResponse): () => void {
    const slot = this.limiter.take(rateKey);
    if (!slot.ok) {
      if (res) this.counted.add(res);
      this.record(rejectedEntry(tool, 'rate_limited', 429, endpoint), false);
      throw rateLimitError(slot);
    }
    return () => slot.release();
  }

  /**
   * The chat pipeline's services for requests that do not come over HTTP (VS Code's language-model
   * provider, via inProcess.ts): same guards, ledger and onDidFinishRequest listeners.
   */
  inProcessServices(): ChatServices {
    return {
      ...this.services(),
      admit: (client) => this.admit(client, 'chat'),
    };
  }

  private services(): ChatServices {
    return {
      config: this.config,
      registry: this.registry,
      upstream: this.upstream,
      usage: this.usage,
      tokens: this.opts.tokens,
      ladder: this.ladder,
      logger: this.opts.logger,
      getApiKey: this.opts.getApiKey,
      record: (e, sentToPoe) => this.record(e, sentToPoe),
      spend: this.spend,
      isShuttingDown: () => this.closing,
    };
  }

  /** A request that reached Poe gets its own ledger line; one answered by the proxy alone is only counted. */
  private record(entry: LedgerEntry, sentToPoe: boolean): void {
    const pts = entry.points === null ? '-' : `${entry.points}${entry.pointsEstimated ? ' est.' : ''}`;
    this.opts.logger.info(
      `${entry.endpoint} ${entry.model || '?'} ${entry.status} ${entry.httpStatus} ${entry.durationMs}ms tokens ${entry.tokensIn}/${entry.tokensOut} points ${pts} retries ${entry.retries} client ${entry.client}${entry.error ? ` — ${entry.error}` : ''}`,
    );
    if (sentToPoe) this.opts.ledger?.append(entry);
    else this.opts.ledger?.countRefusedEntry(entry);
    this.spend.add(entry);
    this.reconciler?.add(entry);
    notifyAll(this.finishListeners, entry, this.opts.logger, 'request');
  }

  /** Reads the body with a size cap and a deadline (slowloris). */
  private readBody(req: http.IncomingMessage): Promise<string> {
    const { maxBodyBytes, bodyTimeoutMs } = this.config;
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      req.resume();
      return Promise.reject(tooLarge(maxBodyBytes));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const timer = setTimeout(() => {
        // The 408 goes out with Connection: close, which ends the socket; destroy later only as a backstop.
        req.removeAllListeners('data');
        req.pause();
        reject(
          new ProxyError(
            408,
            `The request body did not arrive within ${Math.round(bodyTimeoutMs / 1000)} s. Send the whole body at once, or check what is slowing the client down.`,
            'invalid_request_error',
            'body_timeout',
            null,
            { connection: 'close' },
          ),
        );
        setTimeout(() => req.destroy(), 2_000).unref();
      }, bodyTimeoutMs);
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBodyBytes) {
          clearTimeout(timer);
          req.removeAllListeners('data');
          req.resume();
          reject(tooLarge(maxBodyBytes));
          return;
        }
        chunks.push(c);
      });
      req.once('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        // Invalid UTF-8 would otherwise turn silently into U+FFFD and reach Poe.
        const text = buf.toString('utf8');
        if (text.includes('\uFFFD') && !isValidUtf8(buf)) {
          reject(badRequest('The request body is not valid UTF-8.', null, 'invalid_encoding'));
          return;
        }
        resolve(text);
      });
      req.once('error', (err) => {
        clearTimeout(timer);
        // A client that goes away mid-upload is an ordinary event, not a proxy failure: one debug line.
        this.opts.logger.debug(`client closed the connection before the request body was complete (${err.message})`);
        reject(new ProxyError(400, 'The client closed the connection before the request body was complete.', 'invalid_request_error', 'client_closed'));
      });
    });
  }

  private health(): Record<string, unknown> {
    return {
      name: PROXY_NAME,
      version: PROXY_VERSION,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      upstream: this.config.poeBaseUrl,
      port: this.address?.port ?? this.config.port,
      models: this.registry.models.length,
      keyConfigured: Boolean(this.opts.getApiKey()),
      accessKeyRequired: Boolean(this.config.accessKey),
    };
  }

  private modelList(): Record<string, unknown> {
    const newest = new Map(Object.entries(this.registry.newestClaude()).map(([family, m]) => [m, family]));
    return {
      object: 'list',
      data: this.registry.models.map((m) => ({
        id: m.id,
        object: 'model',
        created: this.createdModels,
        owned_by: 'poe',
        // Other ids that reach this model: models.yaml aliases, Anthropic's id for a Claude entry, and
        // for the newest Claude of a family, every other id of that family (claude-opus-4-7, …).
        aliases: this.registry.idsFor(m),
        ...(newest.has(m) ? { vendor_family: `claude-${newest.get(m)}-*` } : {}),
        modality: m.modality,
        context_length: this.registry.contextLimit(m, this.config.contextLimit),
        ...(m.maxOutputTokens ? { max_output_tokens: m.maxOutputTokens } : {}),
        pricing: { base_points: m.base, points_per_1k_tokens: m.per1kTokens },
      })),
    };
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private sendError(res: http.ServerResponse, err: unknown, anthropic = false): void {
    const pe = err instanceof ProxyError ? err : new ProxyError(500, `Internal proxy error: ${(err as Error)?.message ?? err}`, 'api_error', 'internal_error');
    if (!(err instanceof ProxyError)) this.opts.logger.error(`request failed: ${(err as Error)?.stack ?? err}`);
    if (res.headersSent) {
      if (!res.writableEnded) res.end();
      return;
    }
    if (res.destroyed) return;
    this.sendJson(res, pe.status, anthropic ? anthropicErrorBody(pe) : pe.toBody(), pe.headers);
  }

  private makeUpstream(config: ProxyConfig): UpstreamClient {
    return new UpstreamClient({
      baseUrl: config.poeBaseUrl,
      getApiKey: this.opts.getApiKey,
      headersTimeoutMs: config.upstreamHeadersTimeoutMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      userAgent: `${PROXY_NAME}/${PROXY_VERSION}`,
    });
  }
}

export function createUsageService(upstream: UpstreamClient, config: ProxyConfig, logger: Logger): PoeUsage {
  return new PoeUsage({
    fetchJson: async (path, signal) => {
      const r = await upstream.getJson(path, signal);
      return { status: r.status, body: r.body };
    },
    balanceTtlMs: config.balanceTtlMs,
    balanceTimeoutMs: config.balanceTimeoutMs,
    pointsWaitMs: config.pointsWaitMs,
    logger,
  });
}

/** Rate-limit identity: the remote address (every local tool shares 127.0.0.1, so the bucket is per machine). */
function clientKey(req: http.IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
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

/** The event that ends a stream cut by shutdown, in the format its client reads. */
function shutdownFrame(req: http.IncomingMessage | undefined): string {
  const err = new ProxyError(503, 'The Poe proxy is shutting down; retry the request.', 'api_error', 'proxy_shutdown');
  const path = (req?.url ?? '').split('?')[0];
  const dialect = path.startsWith('/v1/messages') ? anthropicDialect(silentLogger) : /^(\/v1)?\/responses/.test(path) ? responsesDialect : undefined;
  return dialect ? dialect.errorEvent(err, { text: '', completed: false }) : `data: ${JSON.stringify(err.toBody())}\n\ndata: [DONE]\n\n`;
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw badRequest(`The request body is not valid JSON (${(err as Error).message}). Send a JSON object.`, null, 'invalid_json');
  }
}

/** Anthropic clients get Anthropic-shaped errors and model lists: its routes, and GET /v1/models with an anthropic-version header. */
function speaksAnthropic(req: http.IncomingMessage): boolean {
  const path = (req.url ?? '').split('?')[0].replace(/\/+$/, '');
  return path.startsWith('/v1/messages') || (/^(\/v1)?\/models$/.test(path) && req.headers['anthropic-version'] !== undefined);
}

/** Raw answers for requests Node rejects before they reach a handler (bad syntax, header timeout, huge headers). */
function clientErrorResponse(code: string | undefined): string {
  const [status, text, message] =
    code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'The request headers did not arrive in time; send the whole request at once.']
      : code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'The request headers are larger than 32 KiB; send fewer or smaller headers.']
        : [400, 'Bad Request', 'Malformed HTTP request; send a valid HTTP/1.1 request.'];
  const body = JSON.stringify({
    error: {
      message,
      type: 'invalid_request_error',
      param: null,
      code: status === 400 ? 'bad_http' : status === 408 ? 'headers_timeout' : 'headers_too_large',
    },
  });
  const advice = Object.entries(retryHeaders(status))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${advice}Connection: close\r\n\r\n${body}`;
}

function tooLarge(max: number): ProxyError {
  return new ProxyError(
    413,
    `The request body is larger than ${Math.round(max / 1024 / 1024)} MiB. Shorten the conversation, or raise MAX_BODY_MB (headless proxy).`,
    'invalid_request_error',
    'body_too_large',
    null,
    { connection: 'close' },
  );
}

function isValidUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}
