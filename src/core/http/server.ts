/**
 * The proxy's HTTP front end: listen, gatekeeping, the route table, graceful stop. The services it
 * serves with are the engine's (src/core/engine.ts); it owns no VS Code state and only the socket.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { anthropicDialect, anthropicErrorBody, anthropicModelList, countTokens } from '../exchange/anthropic';
import { ChatExchange, type ChatServices } from '../exchange/chat';
import { isLoopbackHost, type ProxyConfig } from '../store/config';
import { ProxyError, retryHeaders } from './errors';
import { clientName } from '../clientName';
import type { Engine } from '../engine';
import type { LedgerEntry } from '../store/ledger';
import { PassthroughExchange, type WireDialect } from '../exchange/passthrough';
import { responsesDialect } from '../exchange/responses';
import { allowedHostValues, checkAccessKey, checkHost, checkJsonContentType, checkOrigin } from './security';
import { parseJson, readBody } from './body';
import { silentLogger } from '../log';
import { PROXY_NAME, PROXY_VERSION } from '../version';

/** The wire format a route speaks: it picks the shape of its errors and of the event that ends a stream cut by shutdown. */
export type Dialect = 'openai' | 'anthropic' | 'responses';

export interface Route {
  method: 'GET' | 'POST';
  paths: readonly string[];
  /** Fixed, or per request (GET /v1/models answers Anthropic clients, known by their anthropic-version header, in their shape). */
  dialect: Dialect | ((req: http.IncomingMessage) => Dialect);
  /** Served without the local access key (/health only). */
  open?: boolean;
  handler(req: http.IncomingMessage, res: http.ServerResponse): unknown;
}

const anthropicWire = anthropicDialect(silentLogger);

/** The error body a client of `dialect` reads. */
export function errorBody(dialect: Dialect, err: ProxyError): unknown {
  return dialect === 'anthropic' ? anthropicErrorBody(err) : err.toBody();
}

/** The event that ends a stream cut by shutdown, in the format its client reads. */
export function shutdownFrame(dialect: Dialect): string {
  const err = new ProxyError(503, 'The Poe proxy is shutting down; retry the request.', 'api_error', 'proxy_shutdown');
  const state = { text: '', completed: false };
  if (dialect === 'anthropic') return anthropicWire.errorEvent(err, state);
  if (dialect === 'responses') return responsesDialect.errorEvent(err, state);
  return `data: ${JSON.stringify(err.toBody())}\n\ndata: [DONE]\n\n`;
}

export class ProxyServer {
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly inFlight = new Set<http.ServerResponse>();
  /** The dialect each response's route chose (its errors and its shutdown answer). */
  private readonly dialects = new WeakMap<http.ServerResponse, Dialect>();
  private closing = false;
  private allowedHosts: { config: ProxyConfig; port: number | undefined; values: Set<string> } | undefined;
  /** Responses whose refusal was already counted (so the error path does not count it again). */
  private readonly counted = new WeakSet<http.ServerResponse>();
  private readonly startedAt = Date.now();
  private readonly createdModels = Math.floor(Date.now() / 1000);
  private readonly routes: readonly Route[];
  private readonly byPath = new Map<string, Route>();

  constructor(readonly engine: Engine) {
    const anthropicHeader = (req: http.IncomingMessage): Dialect => (req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai');
    this.routes = [
      { method: 'GET', paths: ['/health'], dialect: 'openai', open: true, handler: (_req, res) => this.sendJson(res, 200, this.health()) },
      {
        method: 'GET',
        paths: ['/v1/models', '/models'],
        dialect: anthropicHeader,
        handler: (req, res) =>
          this.sendJson(res, 200, anthropicHeader(req) === 'anthropic' ? anthropicModelList(this.engine.registry, this.createdModels) : this.modelList()),
      },
      { method: 'POST', paths: ['/v1/chat/completions', '/chat/completions'], dialect: 'openai', handler: (req, res) => this.chat(req, res) },
      {
        method: 'POST',
        paths: ['/v1/messages'],
        dialect: 'anthropic',
        handler: (req, res) => this.passthrough(req, res, anthropicDialect(this.engine.logger)),
      },
      { method: 'POST', paths: ['/v1/messages/count_tokens'], dialect: 'anthropic', handler: (req, res) => this.countTokens(req, res) },
      { method: 'POST', paths: ['/v1/responses', '/responses'], dialect: 'responses', handler: (req, res) => this.passthrough(req, res, responsesDialect) },
    ];
    for (const r of this.routes) for (const p of r.paths) this.byPath.set(p, r);
  }

  private get config(): ProxyConfig {
    return this.engine.config;
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
    server.on('error', (err) => this.engine.logger.error(`server error: ${err.message}`));
    this.server = server;
    const addr = server.address() as AddressInfo;
    if (!isLoopbackHost(host))
      this.engine.logger.warn(`listening on ${host}:${addr.port} — reachable from the network; every request must carry the access key`);
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

  get activeRequests(): number {
    return this.inFlight.size;
  }

  /**
   * The Host values the DNS-rebinding gate accepts: for the engine's current config and the port really
   * listened on (with port 0, tests, the real port is known only once listening).
   */
  private hostValues(): Set<string> {
    const config = this.config;
    const port = this.address?.port;
    const cached = this.allowedHosts;
    if (cached && cached.config === config && cached.port === port) return cached.values;
    const values = allowedHostValues({ ...config, port: port ?? config.port });
    this.allowedHosts = { config, port, values };
    return values;
  }

  /**
   * Stops accepting requests, gives in-flight streams `graceMs` to finish, then ends them with an
   * error event and closes every socket. The engine stays: its owner disposes it.
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
      const dialect = this.dialects.get(res) ?? 'openai';
      if (res.headersSent && !res.writableEnded) {
        flushed.push(new Promise((resolve) => res.once('finish', resolve).once('close', resolve)));
        res.end(shutdownFrame(dialect));
      } else if (!res.headersSent && !res.destroyed) {
        // A JSON answer still waiting for Poe: a clear 503 rather than a dropped connection.
        flushed.push(new Promise((resolve) => res.once('finish', resolve).once('close', resolve)));
        this.sendError(
          res,
          new ProxyError(503, 'The Poe proxy is shutting down; retry the request.', 'api_error', 'proxy_shutdown', null, { connection: 'close' }),
          dialect,
        );
      }
    }
    // Let those last events reach the sockets (bounded: a client that does not read is not waited for).
    if (flushed.length) await Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, 1_000).unref())]);
    for (const s of this.sockets) s.destroy();
    await closed;
    // What is still running reads from Poe for a client that is gone: cut it (recorded as our shutdown).
    this.engine.cutUpstream();
    this.server = undefined;
  }

  // ---- request handling ---------------------------------------------------------------------

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const route = this.byPath.get(path);
    // Chosen once, here: every error and the shutdown frame of this request use it.
    const dialect: Dialect = !route ? 'openai' : typeof route.dialect === 'function' ? route.dialect(req) : route.dialect;
    this.dialects.set(res, dialect);
    this.inFlight.add(res);
    res.once('close', () => this.inFlight.delete(res));
    this.dispatch(req, res, path, route).catch((err) => {
      this.countGateRefusal(req, res, err);
      this.sendError(res, err, dialect);
    });
  }

  /** A POST refused before any exchange ran (access key, host, origin, size, format): counted, not written. */
  private countGateRefusal(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    if (req.method !== 'POST' || this.counted.has(res) || !(err instanceof ProxyError) || err.status < 400 || err.status >= 500) return;
    this.engine.countRefused(clientName(req.headers), err.status === 429 ? 'rate_limit' : 'gate');
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse, path: string, route: Route | undefined): Promise<void> {
    if (this.closing) {
      res.setHeader('connection', 'close');
      throw new ProxyError(503, 'The Poe proxy is shutting down; retry in a moment.', 'api_error', 'proxy_shutdown');
    }
    checkHost(req, this.hostValues());
    const origin = checkOrigin(req, this.config);
    if (origin) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      // An allowed page may read the out-of-band cost and the retry advice.
      res.setHeader('access-control-expose-headers', 'x-poe-points, x-poe-points-estimated, x-poe-balance, x-poe-proxy-clipped, x-should-retry, retry-after');
    }
    if (req.method === 'OPTIONS' && origin) {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, x-api-key, anthropic-version, anthropic-beta, x-poe-proxy-footer',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    if (!route?.open) checkAccessKey(req, this.config);
    if (!route) {
      throw new ProxyError(
        404,
        `No route for ${req.method} ${path}. This proxy serves POST /v1/chat/completions, /v1/messages (Anthropic), /v1/messages/count_tokens, /v1/responses, GET /v1/models and GET /health; point your client's base URL at ${this.url ?? 'http://127.0.0.1:9876'}/v1 (Anthropic clients: without /v1).`,
        'not_found_error',
        'unknown_route',
      );
    }
    if (req.method !== route.method) {
      throw new ProxyError(405, `${req.url} accepts ${route.method} only, not ${req.method}.`, 'invalid_request_error', 'method_not_allowed', null, {
        allow: route.method,
      });
    }
    await route.handler(req, res);
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
    this.sendJson(res, 200, await countTokens(parseJson(await this.readBody(req)), this.engine.registry, this.engine.tokens));
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
    let release: () => void;
    try {
      release = this.engine.admit(clientKey(req), endpoint, tool);
    } catch (err) {
      this.counted.add(res); // the engine recorded the refusal
      throw err;
    }
    try {
      await run(parseJson(await this.readBody(req)), tool);
    } finally {
      release();
    }
  }

  private services(): ChatServices {
    return this.engine.services({ isShuttingDown: () => this.closing });
  }

  private readBody(req: http.IncomingMessage): Promise<string> {
    return readBody(req, this.config, this.engine.logger);
  }

  private health(): Record<string, unknown> {
    return {
      name: PROXY_NAME,
      version: PROXY_VERSION,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      upstream: this.config.poeBaseUrl,
      port: this.address?.port ?? this.config.port,
      models: this.engine.registry.models.length,
      keyConfigured: Boolean(this.engine.getApiKey()),
      accessKeyRequired: Boolean(this.config.accessKey),
    };
  }

  private modelList(): Record<string, unknown> {
    const registry = this.engine.registry;
    const newest = new Map(Object.entries(registry.newestClaude()).map(([family, m]) => [m, family]));
    return {
      object: 'list',
      data: registry.models.map((m) => ({
        id: m.id,
        object: 'model',
        created: this.createdModels,
        owned_by: 'poe',
        // Other ids that reach this model: models.yaml aliases, Anthropic's id for a Claude entry, and
        // for the newest Claude of a family, every other id of that family (claude-opus-4-7, …).
        aliases: registry.idsFor(m),
        ...(newest.has(m) ? { vendor_family: `claude-${newest.get(m)}-*` } : {}),
        modality: m.modality,
        context_length: registry.contextLimit(m, this.config.contextLimit),
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

  private sendError(res: http.ServerResponse, err: unknown, dialect: Dialect): void {
    const pe = err instanceof ProxyError ? err : new ProxyError(500, `Internal proxy error: ${(err as Error)?.message ?? err}`, 'api_error', 'internal_error');
    if (!(err instanceof ProxyError)) this.engine.logger.error(`request failed: ${(err as Error)?.stack ?? err}`);
    if (res.headersSent) {
      if (!res.writableEnded) res.end();
      return;
    }
    if (res.destroyed) return;
    this.sendJson(res, pe.status, errorBody(dialect, pe), pe.headers);
  }
}

/** Rate-limit identity: the remote address (every local tool shares 127.0.0.1, so the bucket is per machine). */
function clientKey(req: http.IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
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
