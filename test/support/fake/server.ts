/**
 * A faithful, fast, deterministic fake of Poe's HTTP API (https://api.poe.com) for tests: the server, its
 * state and routing. What each endpoint says lives beside it: chat.ts, responses.ts, messages.ts (the three
 * generation dialects), usage.ts (balance and points_history), faults.ts, reply.ts (replies and token estimates).
 *
 * Serves, on 127.0.0.1 and a random port:
 *   POST /v1/chat/completions        OpenAI chat completions (JSON and SSE), Bearer auth
 *   POST /v1/responses               OpenAI Responses API (JSON and typed SSE events), Bearer auth
 *   POST /v1/messages                Anthropic Messages API (JSON and SSE), x-api-key or Bearer auth
 *   GET  /v1/models, /v1/models/:id  OpenAI model list (no auth, as Poe)
 *   GET  /usage/current_balance      {current_point_balance}
 *   GET  /usage/points_history       {has_more, length, data} most recent first, with limit/starting_after
 *
 * Everything the fake says is computed from the request (no randomness), nothing is logged, and
 * nothing waits unless a test asks for it (ChatReply.chunkDelayMs, pointsLagMs, stall faults).
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { builtinChatRejections, CHAT_PATH, chatCompletion, chatFrames, openAiErrorBody, type ChatBody, type ChatRejection } from './chat';
import { FaultQueue, GARBAGE_FRAMES, isMidStream, midStreamErrorFrame, socketFlushed, TRUNCATED_JSON, type Fault } from './faults';
import { anthropicErrorBody, anthropicFrames, anthropicMessage, badRoleMessage, MESSAGES_PATH, unknownBetaMessage, type MessagesBody } from './messages';
import { defaultReply, normalizeReply, type GenerationBody, type NormReply, type ReplyFn } from './reply';
import { RESPONSES_PATH, responseFrames, responseObject, type ResponsesBody } from './responses';
import { defaultCostPoints, PointsHistory, type CostFn, type PointsEntry } from './usage';

export interface FakePoeOptions {
  /** Accepted key (Bearer, or x-api-key on /v1/messages). Default 'test-poe-key'. */
  apiKey?: string;
  /** Starting current_point_balance. Default 1_000_000. */
  balance?: number;
  /** Model ids served by GET /v1/models and accepted by chat/responses. Default DEFAULT_MODELS. */
  models?: string[];
  /** A points_history entry becomes visible this long after its response finished. Default 0. */
  pointsLagMs?: number;
  /** Default 0 (random free port), always on 127.0.0.1. */
  port?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/chat/completions'. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body; undefined for an empty/unparsable body (see rawBody) or a refused request. */
  body: WireBody;
  rawBody: string;
  /** The client closed the connection before the response ended (faults that kill the socket on purpose do not count). */
  aborted: boolean;
  /** Date.now() when the request line arrived. */
  receivedAt: number;
  // ── extras (not in the original brief) ──
  /** Kind of the fault that was applied to this request, if any. */
  fault?: Fault['kind'];
  /** Status code sent, once headers went out. */
  status?: number;
  /** SSE frames (data events) written so far for a streaming response. */
  chunksSent: number;
  /** The response was ended normally by the fake. */
  completed: boolean;
}

// ───────────────────────────── defaults & helpers ─────────────────────────────

export const DEFAULT_API_KEY = 'test-poe-key';
export const DEFAULT_MODELS: readonly string[] = [
  'GPT-4.1',
  'GPT-4o',
  'GPT-5',
  'o3',
  'Claude-Sonnet-4.5',
  'Claude-Sonnet-4.6',
  'Claude-Opus-4.1',
  'Claude-Opus-4.7',
  'Claude-Haiku-4.5',
  'Gemini-2.5-Pro',
  'Grok-4',
  'GPT-Image-1',
];
const RATE_LIMIT_REQUESTS = 500;

/** The error shape an endpoint speaks. */
export type Dialect = 'openai' | 'anthropic';

const GENERATION_PATHS = new Set([CHAT_PATH, RESPONSES_PATH, MESSAGES_PATH]);

/**
 * A request body as it arrived: JSON of any shape (tests send malformed ones on purpose), which tests
 * read freely. The fake itself reads it as its dialect's type (ChatBody, ResponsesBody, MessagesBody)
 * only once the checks Poe makes have passed.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON: the one untyped value, see above
export type WireBody = any;
interface AbortWaiter {
  resolve: (r: RecordedRequest) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ───────────────────────────── the fake ─────────────────────────────

export class FakePoe {
  /** e.g. 'http://127.0.0.1:PORT' (no /v1). */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Current point balance; each successful generation deducts its cost. Settable. */
  balance: number;
  /** Replaceable reply function, used by all three generation endpoints. */
  reply: ReplyFn = defaultReply;
  /** Replaceable cost function. */
  costPoints: CostFn = defaultCostPoints;

  private readonly server: http.Server;
  private readonly sockets: Set<Socket>;
  private readonly apiKey: string;
  private readonly models: string[];
  private readonly startBalance: number;
  private readonly faults = new FaultQueue();
  private rejections: ChatRejection[] = builtinChatRejections();
  private readonly points: PointsHistory;
  private readonly inflight = new Set<RecordedRequest>();
  private readonly killed = new WeakSet<RecordedRequest>();
  private abortedUnclaimed: RecordedRequest[] = [];
  private abortWaiters: AbortWaiter[] = [];
  private seq = 0;
  private rateWindowStart = 0;
  private rateCount = 0;
  private closed = false;

  private constructor(server: http.Server, sockets: Set<Socket>, url: string, opts: FakePoeOptions) {
    this.server = server;
    this.sockets = sockets;
    this.url = url;
    this.apiKey = opts.apiKey ?? DEFAULT_API_KEY;
    this.startBalance = opts.balance ?? 1_000_000;
    this.balance = this.startBalance;
    this.models = [...(opts.models ?? DEFAULT_MODELS)];
    this.points = new PointsHistory(opts.pointsLagMs ?? 0);
  }

  static start(opts: FakePoeOptions = {}): Promise<FakePoe> {
    return new Promise((resolve, reject) => {
      let fake: FakePoe | undefined;
      const sockets = new Set<Socket>();
      const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 30_000 }, (req, res) => {
        if (fake) fake.handle(req, res);
        else res.destroy();
      });
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        fake = new FakePoe(server, sockets, `http://127.0.0.1:${port}`, opts);
        server.off('error', reject);
        resolve(fake);
      });
    });
  }

  // ── inspection ──

  /** Only POST /v1/chat/completions. */
  chatRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.path === CHAT_PATH);
  }

  /** All points entries (visible or not), oldest first (append order). Copies. */
  pointsHistory(): PointsEntry[] {
    return this.points.all();
  }

  /** Requests whose response has not ended yet (stalled ones included). */
  inFlight(): number {
    return this.inflight.size;
  }

  /**
   * Resolves with the next generation request (chat, responses or messages) whose client closed before the
   * response ended. Aborts that happened before the call are delivered too, each once, in order.
   */
  waitForAbort(timeoutMs = 5000): Promise<RecordedRequest> {
    const ready = this.abortedUnclaimed.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter: AbortWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.abortWaiters = this.abortWaiters.filter((w) => w !== waiter);
          reject(new Error(`FakePoe.waitForAbort: no client abort within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.abortWaiters.push(waiter);
    });
  }

  // ── steering ──

  /**
   * Queue a fault for the next matching request(s), FIFO. `path` defaults to '/v1/chat/completions'; '*' matches
   * any path. `times` defaults to 1. A fault is consumed when a matching request arrives, before auth/validation.
   */
  enqueueFault(fault: Fault, opts: { path?: string; times?: number } = {}): void {
    this.faults.add(fault, opts.path ?? CHAT_PATH, opts.times ?? 1);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Chat completions answer 400 with the returned message when `pred` returns a string (after the built-in refusals). */
  rejectWhen(pred: ChatRejection): void {
    this.rejections.push(pred);
  }

  /** Back to the starting state: requests, faults, rejections (built-ins restored), reply, costPoints, balance, points, rate window. */
  reset(): void {
    this.requests.length = 0;
    this.faults.clear();
    this.rejections = builtinChatRejections();
    this.reply = defaultReply;
    this.costPoints = defaultCostPoints;
    this.balance = this.startBalance;
    this.points.clear();
    this.abortedUnclaimed = [];
    this.rateCount = 0;
    this.rateWindowStart = 0;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const w of this.abortWaiters) {
      clearTimeout(w.timer);
      w.reject(new Error('FakePoe closed'));
    }
    this.abortWaiters = [];
    const socketsClosed = [...this.sockets].map((s) => new Promise<void>((r) => (s.destroyed && !s.listenerCount('close') ? r() : s.once('close', () => r()))));
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    return Promise.all([serverClosed, ...socketsClosed]).then(() => undefined);
  }

  // ───────────────────────────── internals ─────────────────────────────

  private readonly nextId = (prefix: string): string => {
    this.seq += 1;
    return `${prefix}fake${String(this.seq).padStart(6, '0')}`;
  };

  private rateHeaders(): Record<string, string> {
    const now = Date.now();
    if (now - this.rateWindowStart >= 60_000) {
      this.rateWindowStart = now;
      this.rateCount = 0;
    }
    this.rateCount += 1;
    return {
      'x-ratelimit-limit-requests': String(RATE_LIMIT_REQUESTS),
      'x-ratelimit-remaining-requests': String(Math.max(0, RATE_LIMIT_REQUESTS - this.rateCount)),
      'x-ratelimit-reset-requests': String(Math.max(1, Math.ceil((this.rateWindowStart + 60_000 - now) / 1000))),
    };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://fake');
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: u.searchParams,
      headers: req.headers,
      body: undefined,
      rawBody: '',
      aborted: false,
      receivedAt: Date.now(),
      chunksSent: 0,
      completed: false,
    };
    this.requests.push(rec);
    this.inflight.add(rec);
    res.on('close', () => {
      this.inflight.delete(rec);
      if (!res.writableFinished && !this.killed.has(rec) && !this.closed) {
        rec.aborted = true;
        if (rec.method === 'POST' && GENERATION_PATHS.has(rec.path)) this.noteAbort(rec);
      }
    });

    const fault = this.faults.take(rec.path);
    if (fault) rec.fault = fault.kind;
    if (fault?.kind === 'refuse') {
      this.killed.add(rec);
      req.socket.destroy();
      return;
    }

    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      rec.rawBody = parts.length === 1 ? parts[0].toString('utf8') : Buffer.concat(parts).toString('utf8');
      if (rec.rawBody) {
        try {
          rec.body = JSON.parse(rec.rawBody);
        } catch {
          rec.body = undefined;
        }
      }
      this.dispatch(rec, req, res, fault).catch((e: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          this.sendJson(rec, res, 500, {
            error: { message: `FakePoe internal error: ${(e as Error)?.message ?? String(e)}`, type: 'server_error', code: null },
          });
        } else {
          res.destroy();
        }
      });
    });
  }

  private noteAbort(rec: RecordedRequest): void {
    const w = this.abortWaiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(rec);
    } else {
      this.abortedUnclaimed.push(rec);
    }
  }

  private async dispatch(rec: RecordedRequest, req: http.IncomingMessage, res: http.ServerResponse, fault: Fault | undefined): Promise<void> {
    const dialect: Dialect = rec.path === MESSAGES_PATH ? 'anthropic' : 'openai';
    const isV1 = rec.path.startsWith('/v1/');
    const extra = isV1 && rec.path !== '/v1/models' && !rec.path.startsWith('/v1/models/') ? this.rateHeaders() : {};

    if (fault) {
      switch (fault.kind) {
        case 'status': {
          const headers = { ...extra, ...(fault.headers ?? {}) };
          if (fault.body !== undefined) {
            this.sendRaw(rec, res, fault.status, fault.body, { 'content-type': 'application/json', ...headers });
          } else {
            this.sendError(rec, res, dialect, fault.status, fault.message ?? `Fake upstream error ${fault.status}`, headers);
          }
          return;
        }
        case 'reset-before-headers':
          this.kill(rec, req.socket);
          return;
        case 'stall-before-headers':
          return; // never answer; the client (or close()) ends it
        case 'invalid-json':
          this.sendRaw(rec, res, 200, TRUNCATED_JSON, {
            'content-type': 'application/json',
            ...extra,
          });
          return;
        default:
          break; // mid-stream faults are applied while answering
      }
    }

    const { method, path } = rec;
    if (method === 'POST' && path === CHAT_PATH) return this.handleGeneration(rec, res, 'chat', fault, extra);
    if (method === 'POST' && path === RESPONSES_PATH) return this.handleGeneration(rec, res, 'responses', fault, extra);
    if (method === 'POST' && path === MESSAGES_PATH) return this.handleGeneration(rec, res, 'messages', fault, extra);
    if (method === 'GET' && path === '/v1/models') {
      this.sendJson(rec, res, 200, { object: 'list', data: this.models.map((id) => this.modelObject(id)) });
      return;
    }
    if (method === 'GET' && path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (this.models.includes(id)) this.sendJson(rec, res, 200, this.modelObject(id));
      else this.sendError(rec, res, 'openai', 404, `Model '${id}' does not exist`, {}, 'model_not_found');
      return;
    }
    if (method === 'GET' && path === '/usage/current_balance') {
      if (!this.bearerOk(rec)) return this.sendError(rec, res, 'openai', 401, 'Invalid API key provided', {}, 'invalid_api_key');
      this.sendJson(rec, res, 200, { current_point_balance: Math.round(this.balance) });
      return;
    }
    if (method === 'GET' && path === '/usage/points_history') return this.handlePointsHistory(rec, res);
    this.sendError(rec, res, dialect, 404, `No route for ${method} ${path}`, extra);
  }

  private modelObject(id: string) {
    return { id, object: 'model', created: 1_700_000_000, owned_by: 'poe' };
  }

  private bearerOk(rec: RecordedRequest): boolean {
    const a = rec.headers.authorization;
    return typeof a === 'string' && a === `Bearer ${this.apiKey}`;
  }

  private handlePointsHistory(rec: RecordedRequest, res: http.ServerResponse): void {
    if (!this.bearerOk(rec)) return this.sendError(rec, res, 'openai', 401, 'Invalid API key provided', {}, 'invalid_api_key');
    const page = this.points.page(rec.query);
    if (typeof page === 'string') return this.sendError(rec, res, 'openai', 400, page, {}, 'invalid_parameter');
    this.sendJson(rec, res, 200, page);
  }

  private async handleGeneration(
    rec: RecordedRequest,
    res: http.ServerResponse,
    api: 'chat' | 'responses' | 'messages',
    fault: Fault | undefined,
    extra: Record<string, string>,
  ): Promise<void> {
    const dialect: Dialect = api === 'messages' ? 'anthropic' : 'openai';
    const raw: unknown = rec.body;

    // auth
    if (api === 'messages') {
      const xKey = rec.headers['x-api-key'];
      const ok = (typeof xKey === 'string' && xKey === this.apiKey) || this.bearerOk(rec);
      if (!ok) return this.sendError(rec, res, dialect, 401, 'invalid x-api-key', extra);
      if (!rec.headers['anthropic-version']) return this.sendError(rec, res, dialect, 400, 'anthropic-version: header is required', extra);
      const betaError = unknownBetaMessage(rec.headers);
      if (betaError) return this.sendError(rec, res, dialect, 400, betaError, extra);
    } else if (!this.bearerOk(rec)) {
      return this.sendError(rec, res, dialect, 401, 'Invalid API key provided', extra, 'invalid_api_key');
    }

    // shape
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      return this.sendError(rec, res, dialect, 400, 'Request body must be a JSON object', extra, 'invalid_json');
    }
    const fields = raw as Record<string, unknown>;
    if (typeof fields.model !== 'string' || !fields.model) {
      return this.sendError(
        rec,
        res,
        dialect,
        400,
        api === 'messages' ? 'model: Field required' : "Missing required parameter: 'model'",
        extra,
        'missing_parameter',
      );
    }
    if (api !== 'responses' && (!Array.isArray(fields.messages) || fields.messages.length === 0)) {
      return this.sendError(
        rec,
        res,
        dialect,
        400,
        api === 'messages' ? 'messages: Field required' : "Missing required parameter: 'messages'",
        extra,
        'missing_parameter',
      );
    }
    if (api === 'messages' && typeof fields.max_tokens !== 'number') {
      return this.sendError(rec, res, dialect, 400, 'max_tokens: Field required', extra);
    }
    // Past the checks Poe makes on every request, the body is read as its dialect's shape.
    const body = raw as GenerationBody;
    if (api === 'messages') {
      const roleError = badRoleMessage((body as MessagesBody).messages);
      if (roleError) return this.sendError(rec, res, dialect, 400, roleError, extra);
    }
    const model = body.model;
    const known = api === 'messages' ? /claude/i.test(model) : this.models.includes(model);
    if (!known) {
      return this.sendError(
        rec,
        res,
        dialect,
        404,
        api === 'messages' ? `model: ${model} is not an Anthropic model served by this endpoint` : `Model '${model}' does not exist`,
        extra,
        'model_not_found',
      );
    }
    if (this.balance <= 0) {
      return this.sendError(rec, res, dialect, 402, 'Insufficient points: your point balance is too low for this request', extra, 'insufficient_points');
    }
    for (const pred of api === 'chat' ? this.rejections : []) {
      const msg = pred(body as ChatBody);
      if (typeof msg === 'string') return this.sendError(rec, res, dialect, 400, msg, extra, 'invalid_parameter');
    }

    const reply = normalizeReply(await this.reply(body, rec), body, this.nextId);
    if (res.destroyed) return;
    const stream = body.stream === true;

    if (!stream) {
      if (reply.delayMs > 0) {
        await sleep(reply.delayMs * Math.max(1, reply.pieces.length));
        if (res.destroyed || this.closed) return;
      }
      const json =
        api === 'chat'
          ? chatCompletion(model, reply, this.nextId)
          : api === 'responses'
            ? responseObject(body as ResponsesBody, reply, this.nextId, 'completed')
            : anthropicMessage(model, reply, this.nextId);
      const text = JSON.stringify(json);
      if (fault && (fault.kind === 'reset-mid-stream' || fault.kind === 'stall-mid-stream')) {
        // no stream to cut: send the headers and half the body, then reset or stall
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...extra });
        rec.status = 200;
        res.write(text.slice(0, Math.floor(text.length / 2)));
        if (fault.kind === 'reset-mid-stream') {
          await socketFlushed(res.socket);
          this.kill(rec, res.socket);
        }
        return;
      }
      if (fault?.kind === 'garbage-sse') {
        this.sendRaw(rec, res, 200, text.slice(0, Math.floor(text.length / 2)) + '<garbage>', { 'content-type': 'application/json', ...extra });
        return;
      }
      if (fault?.kind === 'error-mid-stream') {
        this.sendError(rec, res, dialect, 500, fault.message ?? 'Fake upstream error', extra);
        return;
      }
      this.charge(model, reply);
      this.sendRaw(rec, res, 200, text, { 'content-type': 'application/json', ...extra });
      return;
    }

    const frames =
      api === 'chat'
        ? chatFrames(model, reply, (body as ChatBody).stream_options?.include_usage === true, this.nextId)
        : api === 'responses'
          ? responseFrames(body as ResponsesBody, reply, this.nextId)
          : anthropicFrames(model, reply, this.nextId);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...extra });
    rec.status = 200;
    res.flushHeaders();
    const ok = await this.emitFrames(rec, res, frames, fault, reply.delayMs, dialect);
    if (!ok) return;
    this.charge(model, reply);
    rec.completed = true;
    res.end();
  }

  private charge(model: string, reply: NormReply): void {
    const raw = this.costPoints({ model, promptTokens: reply.promptTokens, completionTokens: reply.completionTokens });
    const cost = Math.max(0, Math.round(Number.isFinite(raw) ? raw : 0));
    this.balance -= cost;
    this.points.record({ bot_name: model, query_id: this.nextId('q_'), usage_type: 'API', cost_points: cost });
  }

  /** Writes frames one by one (one write each), honouring backpressure, delays and mid-stream faults. True when all were sent. */
  private async emitFrames(
    rec: RecordedRequest,
    res: http.ServerResponse,
    frames: string[],
    fault: Fault | undefined,
    delayMs: number,
    dialect: Dialect,
  ): Promise<boolean> {
    const garbage = fault?.kind === 'garbage-sse';
    const cutKind = isMidStream(fault) ? fault : undefined;
    const cutAt = cutKind ? Math.max(0, Math.min(cutKind.afterChunks, frames.length)) : Infinity;
    for (let i = 0; i <= frames.length; i++) {
      if (i === cutAt && cutKind) {
        if (cutKind.kind === 'stall-mid-stream') return false;
        if (cutKind.kind === 'reset-mid-stream') {
          // let the frames already written reach the socket, then RST
          await socketFlushed(res.socket);
          this.kill(rec, res.socket);
          return false;
        }
        const message = cutKind.message ?? 'Fake upstream error mid-stream';
        if (await this.write(res, midStreamErrorFrame(dialect, message))) res.end();
        return false;
      }
      if (i === frames.length) break;
      if (i > 0 && delayMs > 0) {
        await sleep(delayMs);
      }
      if (res.destroyed || this.closed) return false;
      if (!res.write(frames[i]) && !(await this.drained(res))) return false;
      rec.chunksSent += 1;
      if (garbage && i < frames.length - 1) {
        if (!res.write(GARBAGE_FRAMES[i % GARBAGE_FRAMES.length]) && !(await this.drained(res))) return false;
      }
    }
    return !res.destroyed;
  }

  private async write(res: http.ServerResponse, s: string): Promise<boolean> {
    if (res.destroyed) return false;
    return res.write(s) || this.drained(res);
  }

  private drained(res: http.ServerResponse): Promise<boolean> {
    if (res.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        res.off('drain', onDrain);
        res.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      res.on('drain', onDrain);
      res.on('close', onClose);
    });
  }

  private kill(rec: RecordedRequest, socket: Socket | null): void {
    this.killed.add(rec);
    if (!socket || socket.destroyed) return;
    if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  }

  private sendRaw(rec: RecordedRequest, res: http.ServerResponse, status: number, text: string, headers: Record<string, string>): void {
    if (res.headersSent || res.destroyed) return;
    rec.status = status;
    rec.completed = true;
    res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  private sendJson(rec: RecordedRequest, res: http.ServerResponse, status: number, obj: unknown, headers: Record<string, string> = {}): void {
    this.sendRaw(rec, res, status, JSON.stringify(obj), { 'content-type': 'application/json', ...headers });
  }

  private sendError(
    rec: RecordedRequest,
    res: http.ServerResponse,
    dialect: Dialect,
    status: number,
    message: string,
    headers: Record<string, string>,
    code?: string,
  ): void {
    const body = dialect === 'anthropic' ? anthropicErrorBody(status, message) : openAiErrorBody(status, message, code);
    this.sendJson(rec, res, status, body, headers);
  }
}
