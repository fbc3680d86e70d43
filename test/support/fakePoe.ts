/**
 * A faithful, fast, deterministic fake of Poe's HTTP API (https://api.poe.com) for tests.
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
import { performance } from 'node:perf_hooks';
import { contentText } from '../../src/core/exchange/openaiTypes';

// ───────────────────────────── public types ─────────────────────────────

export interface FakePoeOptions {
  /** Accepted key (Bearer, or x-api-key on /v1/messages). Default 'test-poe-key'. */
  apiKey?: string;
  /** Starting current_point_balance. Default 1_000_000. */
  balance?: number;
  /** Model ids served by GET /v1/models and accepted by chat/responses. Default DEFAULT_MODELS. */
  models?: string[];
  /** A points_history entry becomes visible this long after its response finished. Default 0. */
  pointsLagMs?: number;
  /** Cost of one successful generation. Default defaultCostPoints. Rounded to an integer ≥ 0. */
  costPoints?: (req: { model: string; promptTokens: number; completionTokens: number }) => number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (random free port). */
  port?: number;
  /** anthropic-beta values /v1/messages accepts; any other value → 400. Default DEFAULT_ANTHROPIC_BETAS. */
  anthropicBetas?: string[];
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/chat/completions'. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body; undefined for an empty/unparsable body (see rawBody) or a refused request. */
  body: any;
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

export type ChatReply = {
  content?: string;
  /** Streamed pieces (joined, they are the content). Overrides `content`. */
  chunks?: string[];
  toolCalls?: Array<{ id?: string; name: string; arguments: string }>;
  /** Default 'tool_calls' when toolCalls are present, else 'stop'. */
  finishReason?: string;
  /** Overrides the token estimate. */
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** Delay between SSE frames; a non-streamed answer waits chunkDelayMs × number of pieces. */
  chunkDelayMs?: number;
};

export type Fault =
  | { kind: 'status'; status: number; message?: string; body?: string; headers?: Record<string, string> }
  | { kind: 'reset-before-headers' }
  | { kind: 'refuse' }
  | { kind: 'stall-before-headers' }
  | { kind: 'reset-mid-stream'; afterChunks: number }
  | { kind: 'stall-mid-stream'; afterChunks: number }
  | { kind: 'garbage-sse' }
  | { kind: 'invalid-json' }
  /** Extra: after `afterChunks` frames, an in-stream error event (`data: {"error":{…}}`, or Anthropic `event: error`), then the stream ends. */
  | { kind: 'error-mid-stream'; afterChunks: number; message?: string };

export interface PointsEntry {
  /** Unix time in microseconds. */
  creation_time: number;
  bot_name: string;
  query_id: string;
  usage_type: 'API' | 'Chat' | 'Canvas App' | string;
  cost_points: number;
}

export type ReplyFn = (body: any, req: RecordedRequest) => ChatReply | Promise<ChatReply>;

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
/** anthropic-beta values the fake's /v1/messages accepts by default (which ones Poe accepts is unconfirmed). */
export const DEFAULT_ANTHROPIC_BETAS: readonly string[] = [
  'prompt-caching-2024-07-31',
  'token-efficient-tools-2025-02-19',
  'interleaved-thinking-2025-05-14',
  'fine-grained-tool-streaming-2025-05-14',
  'output-128k-2025-02-19',
  'context-1m-2025-08-07',
];
/**
 * The anthropic-beta value under which Anthropic accepts `{"role":"system"}` inside `messages`. Not in
 * DEFAULT_ANTHROPIC_BETAS (Poe is not known to accept it), so by default the fake refuses such messages
 * as Anthropic's API does without it: `messages.N.role: Input should be 'user' or 'assistant'`.
 */
export const MID_CONVERSATION_SYSTEM_BETA = 'mid-conversation-system-2026-04-07';
/** The reply text when the request has no user message. */
export const NO_USER_MESSAGE_TEXT = 'Hello from FakePoe.';
/** Built-in Poe pickiness messages. */
export const DEVELOPER_ROLE_MESSAGE = "Input should be 'system', 'user' or 'bot'";
export const N_GREATER_THAN_ONE_MESSAGE = "Invalid 'n': only n=1 is supported";
/** Roles Poe's chat completions accept in `messages` (it maps assistant to its 'bot'); anything else (developer, function, …) is refused with DEVELOPER_ROLE_MESSAGE. */
export const POE_CHAT_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];
export const RATE_LIMIT_REQUESTS = 500;

/** ceil(chars / 4). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** 1 + ceil(prompt / 2) + 2 × completion. */
export function defaultCostPoints(req: { model: string; promptTokens: number; completionTokens: number }): number {
  return 1 + Math.ceil(req.promptTokens / 2) + 2 * req.completionTokens;
}

/** Text of a content value in any of the three dialects (string, or parts of type text/input_text/output_text, or tool_result). */
export function anyContentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    if (!part || typeof part !== 'object') continue;
    const p = part as Record<string, unknown>;
    let t = '';
    if (typeof p.text === 'string' && (p.type === 'text' || p.type === 'input_text' || p.type === 'output_text')) t = p.text;
    else if (p.type === 'tool_result') t = anyContentText(p.content);
    else if (p.type === 'tool_use') t = (typeof p.name === 'string' ? p.name : '') + JSON.stringify(p.input ?? {});
    if (t) out += (out ? '\n' : '') + t;
  }
  return out;
}

function messageText(m: any): string {
  if (!m || typeof m !== 'object') return typeof m === 'string' ? m : '';
  let t = Array.isArray(m.content) && m.content.some((p: any) => p && p.type !== 'text') ? anyContentText(m.content) : contentText(m.content);
  if (typeof m.name === 'string') t += m.name;
  if (Array.isArray(m.tool_calls)) {
    for (const tc of m.tool_calls) t += String(tc?.function?.name ?? '') + String(tc?.function?.arguments ?? '');
  }
  // Responses API function_call / function_call_output items
  if (m.type === 'function_call') t += String(m.name ?? '') + String(m.arguments ?? '');
  if (m.type === 'function_call_output') t += typeof m.output === 'string' ? m.output : JSON.stringify(m.output ?? '');
  return t;
}

/** The messages of a request in any dialect (chat `messages`, Responses `instructions`+`input`, Anthropic `system`+`messages`). */
function requestMessages(body: any): any[] {
  if (!body || typeof body !== 'object') return [];
  const out: any[] = [];
  if (body.instructions !== undefined && body.instructions !== null) out.push({ role: 'system', content: body.instructions });
  if (body.system !== undefined && body.system !== null) out.push({ role: 'system', content: body.system });
  if (typeof body.input === 'string') out.push({ role: 'user', content: body.input });
  else if (Array.isArray(body.input)) out.push(...body.input);
  if (Array.isArray(body.messages)) out.push(...body.messages);
  return out;
}

/** Deterministic prompt-token estimate: Σ (ceil(chars/4) + 3) over the messages. Works for all three dialects. */
export function countPromptTokens(body: any): number {
  let n = 0;
  for (const m of requestMessages(body)) n += estimateTokens(messageText(m)) + 3;
  return n;
}

/** Text of the last user message in any dialect, or undefined. */
export function lastUserText(body: any): string | undefined {
  const msgs = requestMessages(body);
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (m && typeof m === 'object' && m.role === 'user') return messageText(m);
  }
  return undefined;
}

/** The default reply: `Echo: <last user text>`, or NO_USER_MESSAGE_TEXT; in JSON mode a JSON document instead (see jsonModeReply). */
export function defaultReply(body: any): ChatReply {
  const json = jsonModeReply(body);
  if (json !== undefined) return { content: json };
  const t = lastUserText(body);
  return { content: t === undefined ? NO_USER_MESSAGE_TEXT : `Echo: ${t}` };
}

/**
 * The JSON schema or JSON mode a request asks for: chat `response_format` ({type:'json_object'} or
 * {type:'json_schema', json_schema:{schema}}) or Responses `text.format` ({type:'json_schema', schema}).
 * undefined when the request wants prose; `{}` for JSON mode without a schema.
 */
export function requestedJsonSchema(body: any): Record<string, unknown> | undefined {
  const f = body?.response_format ?? body?.text?.format;
  if (!f || typeof f !== 'object') return undefined;
  if (f.type === 'json_object') return {};
  if (f.type !== 'json_schema') return undefined;
  const schema = f.json_schema?.schema ?? f.schema;
  return schema && typeof schema === 'object' ? schema : {};
}

/** In JSON mode, a JSON text that is valid for the requested schema (as Poe's models answer then); else undefined. */
export function jsonModeReply(body: any): string | undefined {
  const schema = requestedJsonSchema(body);
  if (schema === undefined) return undefined;
  const value = Object.keys(schema).length ? schemaInstance(schema, schema) : { answer: `Echo: ${lastUserText(body) ?? ''}` };
  return JSON.stringify(value);
}

/** A small value that satisfies `schema` (required properties, first enum/const, minItems, anyOf's first branch, local $refs). */
export function schemaInstance(schema: any, root: any = schema, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 12) return null;
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) {
    const target = schema.$ref
      .slice(2)
      .split('/')
      .reduce((o: any, k: string) => (o && typeof o === 'object' ? o[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), root);
    return schemaInstance(target, root, depth + 1);
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const branch = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branch) && branch.length) return schemaInstance(branch.find((b: any) => b?.type !== 'null') ?? branch[0], root, depth + 1);
  if (Array.isArray(schema.allOf) && schema.allOf.length) return schemaInstance(Object.assign({}, ...schema.allOf), root, depth + 1);
  const type = Array.isArray(schema.type) ? (schema.type.find((t: string) => t !== 'null') ?? schema.type[0]) : schema.type;
  switch (type ?? (schema.properties ? 'object' : schema.items ? 'array' : 'string')) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = schema.properties ?? {};
      const required: string[] = Array.isArray(schema.required) ? schema.required : Object.keys(props);
      for (const k of required) out[k] = schemaInstance(props[k] ?? {}, root, depth + 1);
      return out;
    }
    case 'array':
      return Array.from({ length: Math.max(1, Number(schema.minItems) || 0) }, () => schemaInstance(schema.items ?? {}, root, depth + 1));
    case 'integer':
      return Math.max(1, Math.ceil(Number(schema.minimum ?? 1)));
    case 'number':
      return Number(schema.minimum ?? 1);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return 'x'.repeat(Math.max(1, Number(schema.minLength) || 1));
  }
}

/** Word-ish pieces whose concatenation is exactly `text` (each word keeps its trailing whitespace). */
export function splitWords(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
}

function slices(s: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const GARBAGE_FRAMES = [
  'data: {"id":"truncated json\n\n',
  'this line is not server-sent events\n\n',
  ': a comment line\n\n',
  'data: <html>502 Bad Gateway</html>\n\n',
  'event: bogus\ndata: not json either\n\n',
  'data:\n\n',
];

const OPENAI_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'insufficient_credits',
  403: 'moderation_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'server_error',
  502: 'upstream_error',
  503: 'service_unavailable',
  529: 'overloaded_error',
};
const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

const CHAT_PATH = '/v1/chat/completions';
const RESPONSES_PATH = '/v1/responses';
const MESSAGES_PATH = '/v1/messages';
const GENERATION_PATHS = new Set([CHAT_PATH, RESPONSES_PATH, MESSAGES_PATH]);

interface QueuedFault {
  fault: Fault;
  path: string;
  remaining: number;
}
interface Rejection {
  pred: (body: any) => string | undefined;
  path: string;
}
interface StoredPoints {
  entry: PointsEntry;
  visibleAt: number;
}
interface NormReply {
  text: string;
  pieces: string[];
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  delayMs: number;
}
interface AbortWaiter {
  resolve: (r: RecordedRequest) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type Dialect = 'openai' | 'anthropic';

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
  /** Replaceable cost function (starts as the costPoints option or defaultCostPoints). */
  costPoints: (req: { model: string; promptTokens: number; completionTokens: number }) => number;

  private readonly server: http.Server;
  private readonly sockets: Set<Socket>;
  private readonly apiKey: string;
  private readonly models: string[];
  private readonly pointsLagMs: number;
  private readonly startCost: (req: { model: string; promptTokens: number; completionTokens: number }) => number;
  private readonly betas: Set<string>;
  private readonly startBalance: number;
  private faults: QueuedFault[] = [];
  private rejections: Rejection[] = [];
  private points: StoredPoints[] = [];
  private readonly inflight = new Set<RecordedRequest>();
  private readonly killed = new WeakSet<RecordedRequest>();
  private abortedUnclaimed: RecordedRequest[] = [];
  private abortWaiters: AbortWaiter[] = [];
  private seq = 0;
  private lastMicros = 0;
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
    this.pointsLagMs = opts.pointsLagMs ?? 0;
    this.startCost = opts.costPoints ?? defaultCostPoints;
    this.costPoints = this.startCost;
    this.betas = new Set(opts.anthropicBetas ?? DEFAULT_ANTHROPIC_BETAS);
    this.installBuiltinRejections();
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
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        const addr = server.address() as AddressInfo;
        const host = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
        fake = new FakePoe(server, sockets, `http://${host}:${addr.port}`, opts);
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
    return this.points.map((p) => ({ ...p.entry }));
  }

  /** Add an entry as if another client (or the web UI) had spent points; deducts nothing. */
  addPointsEntry(e: Partial<PointsEntry> & { cost_points: number }, opts: { visibleAfterMs?: number } = {}): PointsEntry {
    const entry: PointsEntry = {
      creation_time: e.creation_time ?? this.nowMicros(),
      bot_name: e.bot_name ?? 'GPT-4.1',
      query_id: e.query_id ?? this.nextId('q_'),
      usage_type: e.usage_type ?? 'API',
      cost_points: e.cost_points,
    };
    this.points.push({ entry, visibleAt: Date.now() + (opts.visibleAfterMs ?? 0) });
    return { ...entry };
  }

  /** Open sockets (idle keep-alive ones included). */
  activeConnections(): number {
    return this.sockets.size;
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
    this.faults.push({ fault, path: opts.path ?? CHAT_PATH, remaining: opts.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** 400 with the returned message when `pred` returns a string. Default path: chat completions. */
  rejectWhen(pred: (body: any) => string | undefined, opts: { path?: string } = {}): void {
    this.rejections.push({ pred, path: opts.path ?? CHAT_PATH });
  }

  /** Removes every rejection, the built-in ones (roles Poe refuses, n > 1) included. */
  clearRejections(): void {
    this.rejections = [];
  }

  /** Back to the starting state: requests, faults, rejections (built-ins restored), reply, costPoints, balance, points, rate window. */
  reset(): void {
    this.requests.length = 0;
    this.faults = [];
    this.rejections = [];
    this.installBuiltinRejections();
    this.reply = defaultReply;
    this.costPoints = this.startCost;
    this.balance = this.startBalance;
    this.points = [];
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

  private installBuiltinRejections(): void {
    this.rejections.push({
      path: CHAT_PATH,
      pred: (b) => (Array.isArray(b?.messages) && b.messages.some((m: any) => !POE_CHAT_ROLES.includes(m?.role)) ? DEVELOPER_ROLE_MESSAGE : undefined),
    });
    this.rejections.push({ path: CHAT_PATH, pred: (b) => (typeof b?.n === 'number' && b.n > 1 ? N_GREATER_THAN_ONE_MESSAGE : undefined) });
  }

  private nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}fake${String(this.seq).padStart(6, '0')}`;
  }

  private nowMicros(): number {
    const t = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    this.lastMicros = Math.max(t, this.lastMicros + 1);
    return this.lastMicros;
  }

  private takeFault(path: string): Fault | undefined {
    for (let i = 0; i < this.faults.length; i++) {
      const q = this.faults[i];
      if (q.path !== '*' && q.path !== path) continue;
      q.remaining -= 1;
      if (q.remaining <= 0) this.faults.splice(i, 1);
      return q.fault;
    }
    return undefined;
  }

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

    const fault = this.takeFault(rec.path);
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
          this.sendRaw(rec, res, 200, '{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis', {
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
    const rawLimit = rec.query.get('limit');
    const limit = rawLimit === null ? 20 : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return this.sendError(rec, res, 'openai', 400, `limit must be an integer between 1 and 100, got ${rawLimit}`, {}, 'invalid_parameter');
    }
    const now = Date.now();
    const visible = this.points
      .filter((p) => p.visibleAt <= now)
      .map((p) => p.entry)
      .sort((a, b) => b.creation_time - a.creation_time);
    let list = visible;
    const after = rec.query.get('starting_after');
    if (after !== null && after !== '') {
      const idx = visible.findIndex((e) => e.query_id === after);
      list = idx >= 0 ? visible.slice(idx + 1) : [];
    }
    const page = list.slice(0, limit).map((e) => ({ ...e }));
    this.sendJson(rec, res, 200, { has_more: list.length > limit, length: page.length, data: page });
  }

  private async handleGeneration(
    rec: RecordedRequest,
    res: http.ServerResponse,
    api: 'chat' | 'responses' | 'messages',
    fault: Fault | undefined,
    extra: Record<string, string>,
  ): Promise<void> {
    const dialect: Dialect = api === 'messages' ? 'anthropic' : 'openai';
    const body = rec.body;

    // auth
    if (api === 'messages') {
      const xKey = rec.headers['x-api-key'];
      const ok = (typeof xKey === 'string' && xKey === this.apiKey) || this.bearerOk(rec);
      if (!ok) return this.sendError(rec, res, dialect, 401, 'invalid x-api-key', extra);
      if (!rec.headers['anthropic-version']) return this.sendError(rec, res, dialect, 400, 'anthropic-version: header is required', extra);
      const betaHeader = rec.headers['anthropic-beta'];
      if (betaHeader !== undefined) {
        const values = (Array.isArray(betaHeader) ? betaHeader.join(',') : betaHeader)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const unknown = values.filter((v) => !this.betas.has(v));
        if (unknown.length) {
          return this.sendError(
            rec,
            res,
            dialect,
            400,
            `Unexpected value(s) \`${unknown.join('`, `')}\` for the \`anthropic-beta\` header. Please consult our documentation at docs.anthropic.com or try again without the header.`,
            extra,
          );
        }
      }
    } else if (!this.bearerOk(rec)) {
      return this.sendError(rec, res, dialect, 401, 'Invalid API key provided', extra, 'invalid_api_key');
    }

    // shape
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return this.sendError(rec, res, dialect, 400, 'Request body must be a JSON object', extra, 'invalid_json');
    }
    if (typeof body.model !== 'string' || !body.model) {
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
    if (api !== 'responses' && (!Array.isArray(body.messages) || body.messages.length === 0)) {
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
    if (api === 'messages' && typeof body.max_tokens !== 'number') {
      return this.sendError(rec, res, dialect, 400, 'max_tokens: Field required', extra);
    }
    if (api === 'messages') {
      // Roles as Anthropic's API takes them: user and assistant, system only under its beta (already checked against the accepted ones).
      const systemOk = String(rec.headers['anthropic-beta'] ?? '')
        .split(',')
        .map((v) => v.trim())
        .includes(MID_CONVERSATION_SYSTEM_BETA);
      const bad = (body.messages as any[]).findIndex((m) => !(m?.role === 'user' || m?.role === 'assistant' || (m?.role === 'system' && systemOk)));
      if (bad >= 0) return this.sendError(rec, res, dialect, 400, `messages.${bad}.role: Input should be 'user' or 'assistant'`, extra);
    }
    const model: string = body.model;
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
    for (const r of this.rejections) {
      if (r.path !== '*' && r.path !== rec.path) continue;
      const msg = r.pred(body);
      if (typeof msg === 'string') return this.sendError(rec, res, dialect, 400, msg, extra, 'invalid_parameter');
    }

    const reply = this.normalize(await this.reply(body, rec), body);
    if (res.destroyed) return;
    const stream = body.stream === true;

    if (!stream) {
      if (reply.delayMs > 0) {
        await sleep(reply.delayMs * Math.max(1, reply.pieces.length));
        if (res.destroyed || this.closed) return;
      }
      const json =
        api === 'chat'
          ? this.chatCompletion(model, reply)
          : api === 'responses'
            ? this.responseObject(body, reply, 'completed')
            : this.anthropicMessage(model, reply);
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
        ? this.chatFrames(model, reply, body.stream_options?.include_usage === true)
        : api === 'responses'
          ? this.responseFrames(body, reply)
          : this.anthropicFrames(model, reply);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...extra });
    rec.status = 200;
    res.flushHeaders();
    const ok = await this.emitFrames(rec, res, frames, fault, reply.delayMs, dialect);
    if (!ok) return;
    this.charge(model, reply);
    rec.completed = true;
    res.end();
  }

  private normalize(r: ChatReply | undefined, body: any): NormReply {
    const reply = r ?? {};
    const pieces = reply.chunks ? [...reply.chunks] : splitWords(reply.content ?? '');
    const text = reply.chunks ? reply.chunks.join('') : (reply.content ?? '');
    const toolCalls = (reply.toolCalls ?? []).map((t) => ({ id: t.id ?? this.nextId('call_'), name: t.name, arguments: t.arguments }));
    const completionText = text + toolCalls.map((t) => t.name + t.arguments).join('');
    return {
      text,
      pieces,
      toolCalls,
      finishReason: reply.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop'),
      promptTokens: reply.usage?.prompt_tokens ?? countPromptTokens(body),
      completionTokens: reply.usage?.completion_tokens ?? estimateTokens(completionText),
      delayMs: reply.chunkDelayMs ?? 0,
    };
  }

  private charge(model: string, reply: NormReply): void {
    const raw = this.costPoints({ model, promptTokens: reply.promptTokens, completionTokens: reply.completionTokens });
    const cost = Math.max(0, Math.round(Number.isFinite(raw) ? raw : 0));
    this.balance -= cost;
    const entry: PointsEntry = { creation_time: this.nowMicros(), bot_name: model, query_id: this.nextId('q_'), usage_type: 'API', cost_points: cost };
    this.points.push({ entry, visibleAt: Date.now() + this.pointsLagMs });
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
    const cutKind = fault && (fault.kind === 'reset-mid-stream' || fault.kind === 'stall-mid-stream' || fault.kind === 'error-mid-stream') ? fault : undefined;
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
        const frame =
          dialect === 'anthropic'
            ? `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`
            : `data: ${JSON.stringify({ error: { message, type: 'server_error', code: null } })}\n\n`;
        if (await this.write(res, frame)) res.end();
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
    const body =
      dialect === 'anthropic'
        ? { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message } }
        : {
            error: {
              message,
              type: OPENAI_ERROR_TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
              code: code ?? OPENAI_ERROR_TYPES[status] ?? null,
            },
          };
    this.sendJson(rec, res, status, body, headers);
  }

  // ── chat completions ──

  private chatCompletion(model: string, r: NormReply) {
    const message: Record<string, unknown> = { role: 'assistant', content: r.text === '' && r.toolCalls.length ? null : r.text, refusal: null };
    if (r.toolCalls.length) {
      message.tool_calls = r.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));
    }
    return {
      id: this.nextId('chatcmpl-'),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: r.finishReason }],
      usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens },
    };
  }

  private chatFrames(model: string, r: NormReply, includeUsage: boolean): string[] {
    const id = this.nextId('chatcmpl-');
    const created = Math.floor(Date.now() / 1000);
    const frames: string[] = [];
    const chunk = (delta: Record<string, unknown>, finish: string | null) => {
      const c: Record<string, unknown> = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      };
      if (includeUsage) c.usage = null;
      frames.push(`data: ${JSON.stringify(c)}\n\n`);
    };
    let first = true;
    const withRole = (d: Record<string, unknown>) => {
      if (!first) return d;
      first = false;
      return { role: 'assistant', ...d };
    };
    for (const p of r.pieces) chunk(withRole({ content: p }), null);
    r.toolCalls.forEach((t, index) => {
      const head: Record<string, unknown> = { tool_calls: [{ index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] };
      chunk(first ? withRole({ content: null, ...head }) : head, null);
      for (const frag of slices(t.arguments, 8)) chunk({ tool_calls: [{ index, function: { arguments: frag } }] }, null);
    });
    if (first) chunk(withRole({ content: '' }), null);
    chunk({}, r.finishReason);
    if (includeUsage) {
      frames.push(
        `data: ${JSON.stringify({
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [],
          usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens },
        })}\n\n`,
      );
    }
    frames.push('data: [DONE]\n\n');
    return frames;
  }

  // ── Responses API ──

  private responsesUsage(r: NormReply) {
    return {
      input_tokens: r.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: r.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: r.promptTokens + r.completionTokens,
    };
  }

  private responseOutput(r: NormReply, msgId: string, fcIds: string[]): any[] {
    const out: any[] = [];
    if (r.text !== '' || r.toolCalls.length === 0) {
      out.push({
        id: msgId,
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: r.text, annotations: [], logprobs: [] }],
      });
    }
    r.toolCalls.forEach((t, i) => out.push({ id: fcIds[i], type: 'function_call', status: 'completed', call_id: t.id, name: t.name, arguments: t.arguments }));
    return out;
  }

  private responseObject(body: any, r: NormReply, status: 'in_progress' | 'completed', ids?: { id: string; created: number; msgId: string; fcIds: string[] }) {
    const id = ids?.id ?? this.nextId('resp_');
    const msgId = ids?.msgId ?? this.nextId('msg_');
    const fcIds = ids?.fcIds ?? r.toolCalls.map(() => this.nextId('fc_'));
    return {
      id,
      object: 'response',
      created_at: ids?.created ?? Math.floor(Date.now() / 1000),
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model: body.model,
      output: status === 'completed' ? this.responseOutput(r, msgId, fcIds) : [],
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: body.previous_response_id ?? null,
      reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
      store: body.store ?? true,
      temperature: body.temperature ?? 1,
      text: body.text ?? { format: { type: 'text' } },
      tool_choice: body.tool_choice ?? 'auto',
      tools: body.tools ?? [],
      top_p: body.top_p ?? 1,
      truncation: body.truncation ?? 'disabled',
      usage: status === 'completed' ? this.responsesUsage(r) : null,
      user: body.user ?? null,
      metadata: body.metadata ?? {},
    };
  }

  private responseFrames(body: any, r: NormReply): string[] {
    const ids = {
      id: this.nextId('resp_'),
      created: Math.floor(Date.now() / 1000),
      msgId: this.nextId('msg_'),
      fcIds: r.toolCalls.map(() => this.nextId('fc_')),
    };
    const frames: string[] = [];
    let seq = 0;
    const ev = (type: string, data: Record<string, unknown>) => {
      frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
    };
    const inProgress = this.responseObject(body, r, 'in_progress', ids);
    ev('response.created', { response: inProgress });
    ev('response.in_progress', { response: inProgress });
    const final = this.responseObject(body, r, 'completed', ids);
    let outputIndex = 0;
    if (r.text !== '' || r.toolCalls.length === 0) {
      const item_id = ids.msgId;
      ev('response.output_item.added', {
        output_index: outputIndex,
        item: { id: item_id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
      });
      ev('response.content_part.added', {
        item_id,
        output_index: outputIndex,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      });
      for (const p of r.pieces) ev('response.output_text.delta', { item_id, output_index: outputIndex, content_index: 0, delta: p, logprobs: [] });
      ev('response.output_text.done', { item_id, output_index: outputIndex, content_index: 0, text: r.text, logprobs: [] });
      ev('response.content_part.done', {
        item_id,
        output_index: outputIndex,
        content_index: 0,
        part: { type: 'output_text', text: r.text, annotations: [], logprobs: [] },
      });
      ev('response.output_item.done', { output_index: outputIndex, item: final.output[outputIndex] });
      outputIndex++;
    }
    r.toolCalls.forEach((t, i) => {
      const item_id = ids.fcIds[i];
      ev('response.output_item.added', {
        output_index: outputIndex,
        item: { id: item_id, type: 'function_call', status: 'in_progress', call_id: t.id, name: t.name, arguments: '' },
      });
      for (const frag of slices(t.arguments, 8)) ev('response.function_call_arguments.delta', { item_id, output_index: outputIndex, delta: frag });
      ev('response.function_call_arguments.done', { item_id, output_index: outputIndex, name: t.name, arguments: t.arguments });
      ev('response.output_item.done', { output_index: outputIndex, item: final.output[outputIndex] });
      outputIndex++;
    });
    ev('response.completed', { response: final });
    return frames;
  }

  // ── Anthropic Messages API ──

  private anthropicStop(r: NormReply): string {
    switch (r.finishReason) {
      case 'stop':
        return 'end_turn';
      case 'tool_calls':
        return 'tool_use';
      case 'length':
        return 'max_tokens';
      default:
        return r.finishReason;
    }
  }

  private anthropicToolId(id: string): string {
    return id.startsWith('call_') ? `toolu_${id.slice(5)}` : id;
  }

  private anthropicMessage(model: string, r: NormReply) {
    const content: any[] = [];
    if (r.text !== '' || r.toolCalls.length === 0) content.push({ type: 'text', text: r.text });
    for (const t of r.toolCalls) content.push({ type: 'tool_use', id: this.anthropicToolId(t.id), name: t.name, input: safeParse(t.arguments) });
    return {
      id: this.nextId('msg_'),
      type: 'message',
      role: 'assistant',
      model,
      content,
      stop_reason: this.anthropicStop(r),
      stop_sequence: null,
      usage: { input_tokens: r.promptTokens, output_tokens: r.completionTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
  }

  private anthropicFrames(model: string, r: NormReply): string[] {
    const frames: string[] = [];
    const ev = (type: string, data: Record<string, unknown>) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    ev('message_start', {
      message: {
        id: this.nextId('msg_'),
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: r.promptTokens, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    });
    let index = 0;
    if (r.text !== '' || r.toolCalls.length === 0) {
      ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
      ev('ping', {});
      for (const p of r.pieces) ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } });
      ev('content_block_stop', { index });
      index++;
    }
    for (const t of r.toolCalls) {
      ev('content_block_start', { index, content_block: { type: 'tool_use', id: this.anthropicToolId(t.id), name: t.name, input: {} } });
      ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
      for (const frag of slices(t.arguments, 8)) ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: frag } });
      ev('content_block_stop', { index });
      index++;
    }
    ev('message_delta', { delta: { stop_reason: this.anthropicStop(r), stop_sequence: null }, usage: { output_tokens: r.completionTokens } });
    ev('message_stop', {});
    return frames;
  }
}

/** Resolves once the socket handed everything buffered to the kernel (or closed). ('drain' only fires after a refused write, so poll.) */
async function socketFlushed(socket: Socket | null): Promise<void> {
  while (socket && !socket.destroyed && socket.writableLength > 0) await new Promise<void>((r) => setImmediate(r));
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return {};
  }
}
