/**
 * Runs the chat pipeline (ChatExchange: validation, guards, clipping, retry ladder, points, ledger)
 * without HTTP. An in-memory ResponseSink receives what the exchange would write to a socket and turns
 * the SSE back into chunks for the caller, as they arrive. VS Code's language-model provider uses it.
 */
import { EventEmitter } from 'node:events';
import { ChatExchange, type ChatServices } from './chat';
import type { ResponseSink } from './exchange';
import { ProxyError } from '../http/errors';
import type { ChatChunk, ChatRequest } from './openaiTypes';
import { SseParser } from '../poe/sse';

export interface InProcessOptions {
  /** Called for every chunk, in order, while the answer streams. */
  onChunk(chunk: ChatChunk): void;
  /** Aborting stops the upstream request at once (the ledger records `aborted`). */
  signal?: AbortSignal;
  /** Ledger `client` column; default "in-process". */
  client?: string;
  /** Append the usage footer; default false (an editor's own UI shows the answer, points go to the ledger). Never on requests that offer tools (footer.ts). */
  footer?: boolean;
  requestId?: string;
}

/** An OpenAI-shaped error the pipeline answered with (before or during the stream). */
export class InProcessChatError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'InProcessChatError';
  }
}

export class InProcessAbortError extends Error {
  constructor() {
    super('The request was cancelled.');
    this.name = 'AbortError';
  }
}

/** Collects the exchange's output: SSE is parsed event by event, JSON (errors) is kept whole. */
class MemorySink extends EventEmitter implements ResponseSink {
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  status = 200;
  private sse = false;
  private json = '';
  private readonly parser = new SseParser();
  error: InProcessChatError | undefined;
  consumerError: unknown;

  constructor(private readonly onChunk: (c: ChatChunk) => void) {
    super();
  }

  writeHead(status: number, headers: Record<string, string | number>): this {
    this.status = status;
    this.sse = String(headers['content-type'] ?? '').startsWith('text/event-stream');
    this.headersSent = true;
    return this;
  }

  flushHeaders(): void {}

  write(chunk: string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(200, { 'content-type': 'text/event-stream' });
    if (this.sse) {
      for (const ev of this.parser.push(chunk)) this.event(ev.data);
    } else {
      this.json += chunk;
    }
    return true;
  }

  end(chunk?: string): this {
    if (this.writableEnded) return this;
    if (chunk) this.write(chunk);
    if (this.sse) for (const ev of this.parser.end()) this.event(ev.data);
    else if (this.json) this.error = toError(this.status, this.json);
    this.writableEnded = true;
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
    return this;
  }

  /** The consumer went away: like a client disconnect, the exchange aborts the upstream request. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }

  private event(data: string): void {
    if (data === '[DONE]' || this.destroyed) return;
    let obj: ChatChunk & { error?: { message?: string; type?: string; code?: string | null } };
    try {
      obj = JSON.parse(data);
    } catch {
      return;
    }
    if (obj.error) {
      this.error = new InProcessChatError(
        obj.error.message ?? 'The stream failed.',
        this.status === 200 ? 502 : this.status,
        obj.error.type ?? 'upstream_error',
        obj.error.code ?? null,
      );
      return;
    }
    try {
      this.onChunk(obj);
    } catch (err) {
      // A consumer that cannot take more stops the request like a cancellation would.
      this.consumerError = err;
      this.destroy();
    }
  }
}

function toError(status: number, text: string): InProcessChatError {
  try {
    const e = (JSON.parse(text) as { error?: { message?: string; type?: string; code?: string | null } }).error;
    if (e?.message) return new InProcessChatError(e.message, status, e.type ?? 'api_error', e.code ?? null);
  } catch {
    /* fall through */
  }
  return new InProcessChatError(`The proxy answered ${status} without an error message.`, status, 'api_error', null);
}

/**
 * Sends `request` through the same pipeline as POST /v1/chat/completions, always streamed. Resolves
 * when the answer is complete; rejects with InProcessChatError (the pipeline's OpenAI-shaped error,
 * with its hint) or InProcessAbortError when `signal` aborted it.
 */
export async function runChatInProcess(services: ChatServices, request: ChatRequest, opts: InProcessOptions): Promise<void> {
  if (opts.signal?.aborted) throw new InProcessAbortError();
  const client = opts.client ?? 'in-process';
  // The same rate limit and concurrency cap as HTTP clients (a refusal is the pipeline's 429).
  let release: () => void;
  try {
    release = services.admit?.(client) ?? (() => undefined);
  } catch (err) {
    if (err instanceof ProxyError) throw new InProcessChatError(err.message, err.status, err.type, err.code);
    throw err;
  }
  try {
    await runAdmitted(services, request, opts, client);
  } finally {
    release();
  }
}

async function runAdmitted(services: ChatServices, request: ChatRequest, opts: InProcessOptions, client: string): Promise<void> {
  const svc: ChatServices = opts.footer ? services : { ...services, config: { ...services.config, footer: false } };
  const sink = new MemorySink(opts.onChunk);
  const headers: Record<string, string> = opts.requestId ? { 'x-request-id': opts.requestId } : {};
  const exchange = new ChatExchange(svc, { headers, inProcess: true }, sink, client);
  const onAbort = (): void => sink.destroy();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await exchange.run({ ...request, stream: true });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (sink.consumerError) throw sink.consumerError;
  if (opts.signal?.aborted || (sink.destroyed && !sink.writableEnded)) throw new InProcessAbortError();
  if (sink.error) throw sink.error;
}

export interface CompletedToolCall {
  id: string;
  name: string;
  /** The parsed arguments; `{}` for empty, and the raw text under `_raw` when it is not JSON. */
  input: Record<string, unknown>;
}

/** Joins streamed `tool_calls` deltas (id and name first, then argument fragments, keyed by index). */
export class ToolCallAccumulator {
  private readonly calls = new Map<number, { id: string; name: string; args: string }>();

  add(delta: ChatChunk['choices'][0]['delta'] | undefined): void {
    for (const t of delta?.tool_calls ?? []) {
      const cur = this.calls.get(t.index) ?? { id: '', name: '', args: '' };
      if (t.id) cur.id = t.id;
      if (t.function?.name) cur.name += t.function.name;
      if (t.function?.arguments) cur.args += t.function.arguments;
      this.calls.set(t.index, cur);
    }
  }

  get size(): number {
    return this.calls.size;
  }

  /** The complete calls, in index order; clears the accumulator. */
  take(): CompletedToolCall[] {
    const out = [...this.calls.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([index, c]) => ({ id: c.id || `call_${index}`, name: c.name, input: parseArgs(c.args) }));
    this.calls.clear();
    return out;
  }
}

function parseArgs(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return { _raw: text };
  }
}
