/**
 * HTTP client for Poe. Plain node:http(s) with a keep-alive agent: the cheapest relay path measured
 * (see performance-facts.md; global fetch costs twice the latency). The Poe key is added here and
 * nowhere else, and only for requests to the configured Poe base URL.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { ProxyError } from '../http/errors';
import { registerSecret } from '../log';

export interface UpstreamOptions {
  baseUrl: string;
  getApiKey: () => string | undefined;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  userAgent: string;
}

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Path below the base URL, e.g. `/v1/chat/completions`. */
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A failure to get a response at all (refused, reset, timeout); carries whether a retry is sensible. */
export class UpstreamConnectionError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'UpstreamConnectionError';
  }
}

export class UpstreamClient {
  private readonly agent: http.Agent;
  private readonly base: URL;
  private readonly transport: typeof http | typeof https;

  constructor(private readonly opts: UpstreamOptions) {
    this.base = new URL(opts.baseUrl);
    this.transport = this.base.protocol === 'https:' ? https : http;
    const AgentCtor = this.base.protocol === 'https:' ? https.Agent : http.Agent;
    // maxFreeSockets = maxSockets: with fewer, a burst above that many requests closes the extra sockets
    // when it ends and the next burst pays a TCP (and TLS) handshake each (the bench showed it at 64 at once).
    this.agent = new AgentCtor({ keepAlive: true, keepAliveMsecs: 15_000, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
  }

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  /**
   * Sends a request and resolves with the response once its headers arrive. The body is left for the
   * caller to consume (streamed). Rejects with UpstreamConnectionError when no response arrives.
   */
  request(req: UpstreamRequest): Promise<http.IncomingMessage> {
    const key = this.opts.getApiKey();
    registerSecret(key); // whatever supplied the key, logs and error messages must redact it
    const basePath = this.base.pathname.replace(/\/+$/, '');
    const headers: Record<string, string | number> = {
      accept: req.method === 'POST' ? 'application/json, text/event-stream' : 'application/json',
      'user-agent': this.opts.userAgent,
      ...(req.headers ?? {}),
    };
    if (key) headers.authorization = `Bearer ${key}`;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(req.body);
    }
    return new Promise((resolve, reject) => {
      if (req.signal?.aborted) {
        reject(new UpstreamConnectionError('request aborted by the client', 'ABORTED'));
        return;
      }
      let settled = false;
      const outgoing = this.transport.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port || undefined,
        path: basePath + req.path,
        method: req.method,
        headers,
        agent: this.agent,
      });
      const fail = (err: UpstreamConnectionError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(headerTimer);
        req.signal?.removeEventListener('abort', onAbort);
        outgoing.destroy();
        reject(err);
      };
      const onAbort = (): void => fail(new UpstreamConnectionError('request aborted by the client', 'ABORTED'));
      const headerTimer = setTimeout(
        () => fail(new UpstreamConnectionError(`Poe sent no response headers within ${duration(this.opts.headersTimeoutMs)}`, 'ETIMEDOUT')),
        this.opts.headersTimeoutMs,
      );
      req.signal?.addEventListener('abort', onAbort, { once: true });
      outgoing.on('error', (err: NodeJS.ErrnoException) => {
        fail(new UpstreamConnectionError(`cannot reach Poe at ${this.base.origin}: ${err.code ?? err.message}`, err.code ?? 'ECONNERROR'));
      });
      outgoing.on('response', (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        clearTimeout(headerTimer);
        // From here the caller owns the response; an abort now destroys it mid-body.
        req.signal?.removeEventListener('abort', onAbort);
        const onBodyAbort = (): void => {
          res.destroy();
          outgoing.destroy();
        };
        req.signal?.addEventListener('abort', onBodyAbort, { once: true });
        res.once('close', () => req.signal?.removeEventListener('abort', onBodyAbort));
        // Idle timeout between body bytes: a stalled stream must not hang forever. The listener is
        // removed again because keep-alive sockets are reused (one listener per request would leak).
        const socket = res.socket;
        const onIdle = (): void => {
          res.destroy(new UpstreamConnectionError(`Poe went silent for ${duration(this.opts.idleTimeoutMs)} mid-response`, 'EIDLE'));
        };
        socket.setTimeout(this.opts.idleTimeoutMs);
        socket.on('timeout', onIdle);
        // While the relay pauses this response for a slow client, the silence is ours, not Poe's.
        const onPause = (): void => void socket.setTimeout(0);
        const onResume = (): void => void socket.setTimeout(this.opts.idleTimeoutMs);
        res.on('pause', onPause);
        res.on('resume', onResume);
        const clearIdle = (): void => {
          socket.setTimeout(0);
          socket.off('timeout', onIdle);
          res.off('pause', onPause);
          res.off('resume', onResume);
        };
        res.once('end', clearIdle);
        res.once('close', clearIdle);
        resolve(res);
      });
      outgoing.end(req.body);
    });
  }

  /** GET a JSON document (usage API, models). Never throws for HTTP status; throws on connection failure. */
  async getJson(path: string, signal?: AbortSignal): Promise<{ status: number; body: unknown; headers: http.IncomingHttpHeaders }> {
    const res = await this.request({ method: 'GET', path, signal });
    const text = await readBody(res, 8 * 1024 * 1024);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* leave as text */
    }
    return { status: res.statusCode ?? 0, body, headers: res.headers };
  }

  dispose(): void {
    this.agent.destroy();
  }
}

/**
 * Reads a whole (non-streaming) body with a size cap. A body that breaks off (reset, idle timeout, too
 * large) rejects with a 502 ProxyError, so every caller answers its client with a clear upstream error.
 */
export function readBody(res: http.IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const broke = (why: string): void =>
      reject(
        new ProxyError(
          502,
          `Poe's answer broke off before it was complete (${why}). Retry the request; if it keeps happening, check your network or try another model.`,
          'upstream_error',
          'upstream_interrupted',
        ),
      );
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        res.destroy(new Error(`response larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', (err) => broke(err.message));
    res.once('close', () => {
      if (!res.complete) broke('connection closed');
    });
  });
}

/** "300 ms" or "15 s": timeouts are shown in the unit they were set in. */
function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** Seconds from a Retry-After header (delta-seconds or HTTP date); undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return secs;
  const date = Date.parse(v);
  if (!Number.isNaN(date)) return Math.max(0, (date - now) / 1000);
  return undefined;
}
