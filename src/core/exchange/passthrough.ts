/**
 * A generation request passed through to Poe in the client's own wire format (Anthropic Messages,
 * OpenAI Responses): the same gate, guards, upstream retries, points and ledger as chat completions,
 * but the answer is relayed byte for byte — whole events as they arrive, parsed on the side only to
 * pick up usage. What differs between formats lives in a `WireDialect`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ledgerEntry, newOutcome, noteFailure, settlePoints } from './accounting';
import { rateLimitHeaders, streamBrokeOff, type ChatServices } from './chat';
import { badRequest, ProxyError } from '../http/errors';
import { costCapError, countImageParts, IMAGE_TOKEN_ESTIMATE, noApiKeyError, pausedAnswer, resolveRequestedModel } from './guards';
import type { LedgerEntry } from '../store/ledger';
import { redact, scrubSecrets } from '../log';
import type { ModelEntry } from '../store/registry';
import { EventAligner, KeepAlive, relayWrite, SSE_HEADERS } from './relay';
import { SSE_PING, SseParser, type SseEvent } from '../poe/sse';
import { encodingForModel } from '../tokens';
import { readBody } from '../poe/upstream';
import { sendWithRetries } from '../poe/upstreamRetry';

export type PassthroughServices = Omit<ChatServices, 'ladder'>;

/** What a relay learns from the upstream answer while passing it on. */
export interface RelayState {
  inputTokens?: number;
  outputTokens?: number;
  /** Generated text (and tool arguments), for a token estimate when Poe reports no usage. */
  text: string;
  /** The format's terminal event arrived (`message_stop`, `response.completed`, …). */
  completed: boolean;
  /** Poe reported an error in the stream (already relayed to the client in its format). */
  failed?: string;
  /** Responses events carry a sequence number; an error event the proxy adds continues it. */
  lastSequence?: number;
}

export interface WireDialect {
  endpoint: LedgerEntry['endpoint'];
  upstreamPath: string;
  /** Throws (a ProxyError with a hint) when this endpoint cannot serve the model. */
  checkModel(model: ModelEntry): void;
  /** Headers forwarded to Poe besides the Poe key (never the client's key). */
  upstreamHeaders(req: IncomingMessage): Record<string, string>;
  /** The body as Poe must get it (before the model id is set), when it differs from the client's. */
  upstreamBody?(body: Record<string, unknown>, req: IncomingMessage): Record<string, unknown>;
  /** Throws a 400 naming the field when the body is not of the format's shape (nothing reaches Poe). */
  validate(body: Record<string, unknown>): void;
  /** The request's input as texts, for the cost cap and token estimates. */
  inputTexts(body: Record<string, unknown>): string[];
  maxOutputTokens(body: Record<string, unknown>): number | undefined;
  /** The paused answer, as the format's JSON object or its whole event stream. */
  pausedJson(model: string, text: string): unknown;
  pausedStream(model: string, text: string): string;
  errorBody(err: ProxyError): unknown;
  /** An error event ending a stream that already started. */
  errorEvent(err: ProxyError, state: RelayState): string;
  /** One streamed event, its data already parsed as JSON (events that are not JSON are relayed but not read). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Poe's event JSON, read field by field by each dialect
  onEvent(type: string | undefined, data: Record<string, any>, state: RelayState): void;
  onJson(body: unknown, state: RelayState): void;
}

const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;
const PER_MESSAGE_OVERHEAD = 4;

export class PassthroughExchange {
  private readonly started = Date.now();
  private readonly abort = new AbortController();
  private readonly outcome = newOutcome();
  private readonly state: RelayState = { text: '', completed: false };
  private finished = false;
  private model: ModelEntry | undefined;
  private requestedModel = '';
  private wantsStream = false;
  private inputTexts: string[] = [];
  /** Images in the input, counted as IMAGE_TOKEN_ESTIMATE tokens each. */
  private inputImages = 0;
  /** SSE comments while Poe is silent (before its headers, or between events): clients must not time out. */
  private readonly pings: KeepAlive;

  constructor(
    private readonly svc: PassthroughServices,
    private readonly dialect: WireDialect,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly client: string,
  ) {
    this.pings = new KeepAlive(svc.config.keepAliveIntervalMs, () => {
      if (res.writableEnded) return this.pings.stop();
      this.commitSse({});
      res.write(SSE_PING);
    });
    // A client that goes away stops the upstream request at once: points must not keep burning.
    res.once('close', () => {
      if (!res.writableFinished) {
        this.outcome.status = 'aborted';
        this.abort.abort();
      }
      this.pings.stop();
    });
  }

  async run(body: unknown): Promise<void> {
    try {
      await this.handle(body);
    } catch (err) {
      this.fail(err);
    } finally {
      this.pings.stop();
    }
  }

  private async handle(raw: unknown): Promise<void> {
    const { config, registry } = this.svc;
    const dialect = this.dialect;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest('The request body must be a JSON object.', null, 'invalid_body');
    const body = raw as Record<string, unknown>;
    if (typeof body.model === 'string') this.requestedModel = body.model;
    // The model first: an unknown one is the 404 that names it, whatever else is wrong with the body.
    const model = resolveRequestedModel(body, registry);
    if (!model) throw badRequest('`model` is required: a poe_name or alias from models.yaml (GET /v1/models lists them).', 'model', 'missing_model');
    dialect.checkModel(model);
    if (body.stream !== undefined && typeof body.stream !== 'boolean') throw badRequest('`stream` must be true or false.', 'stream', 'invalid_type');
    dialect.validate(body);
    this.wantsStream = body.stream === true;
    this.model = model;
    if (!this.svc.getApiKey()) throw noApiKeyError();
    this.inputTexts = dialect.inputTexts(body);
    this.inputImages = countImageParts(body);

    const paused = await pausedAnswer(config, this.svc.usage, this.svc.spend);
    if (paused !== undefined) return this.answerPaused(model, paused);
    if (config.maxPointsPerMessage > 0) {
      const output = dialect.maxOutputTokens(body) ?? model.maxOutputTokens ?? config.outputReserve;
      const refusal = costCapError(config, registry, model, await this.countInput(), output);
      if (refusal) {
        this.outcome.status = 'refused';
        throw refusal;
      }
    }

    const upstreamBody = JSON.stringify({ ...(dialect.upstreamBody?.(body, this.req) ?? body), model: model.id });
    if (this.wantsStream) this.pings.start();
    this.outcome.sentToPoe = true;
    const up = await sendWithRetries({
      upstream: this.svc.upstream,
      config,
      logger: this.svc.logger,
      signal: this.abort.signal,
      path: dialect.upstreamPath,
      body: () => upstreamBody,
      headers: dialect.upstreamHeaders(this.req),
      label: model.id,
      onRetry: () => this.outcome.retries++,
    });
    if (this.wantsStream) await this.relayStream(up);
    else await this.relayJson(up);
  }

  private answerPaused(model: ModelEntry, text: string): void {
    this.outcome.status = 'paused';
    this.outcome.points = 0;
    if (this.wantsStream) {
      this.commitSse({});
      this.res.end(this.dialect.pausedStream(model.id, text));
    } else {
      this.sendJson(200, JSON.stringify(this.dialect.pausedJson(model.id, text)));
    }
    this.finish();
  }

  // ---- relays -------------------------------------------------------------------------------

  private async relayStream(up: IncomingMessage): Promise<void> {
    this.commitSse(rateLimitHeaders(up));
    const parser = new SseParser();
    const aligner = new EventAligner();
    let streamError: string | undefined;

    await new Promise<void>((resolve) => {
      up.on('data', (chunk: Buffer) => {
        let ready: Buffer | undefined;
        try {
          for (const ev of parser.push(chunk)) this.readEvent(ev);
          // Whole events only, so a key Poe quotes back (say in an error event) is never split across writes.
          ready = aligner.push(chunk);
        } catch (err) {
          streamError = (err as Error).message;
          up.destroy();
          return;
        }
        if (!ready) return;
        relayWrite(this.res, scrubSecrets(ready), up);
        // Only bytes the client received count as activity: comments or a half event Poe trickles do not.
        this.pings.touch();
      });
      up.once('end', () => {
        for (const ev of parser.end()) this.readEvent(ev);
        const rest = aligner.end();
        if (rest) relayWrite(this.res, scrubSecrets(rest));
        resolve();
      });
      up.once('error', (err) => {
        if (!this.abort.signal.aborted && !streamError) streamError = streamBrokeOff(this.svc, err.message);
      });
      up.once('close', () => {
        if (!up.complete && !this.abort.signal.aborted && !streamError) streamError = streamBrokeOff(this.svc);
        resolve();
      });
    });

    if (!this.abort.signal.aborted) {
      if (!streamError && !this.state.completed && !this.state.failed) streamError = 'Poe ended the stream without finishing the answer';
      if (streamError) {
        this.svc.logger.error(`stream from Poe failed for ${this.model?.id}: ${streamError}`);
        const pe = new ProxyError(502, `${streamError}. The answer above may be incomplete; retry the request.`, 'upstream_error', 'stream_interrupted');
        this.res.end(this.dialect.errorEvent(pe, this.state));
        this.noteError(502, streamError);
      } else {
        if (this.state.failed) this.noteError(502, this.state.failed);
        this.res.end();
      }
    }
    await this.settleInBackground();
  }

  private readEvent(ev: SseEvent): void {
    let data: unknown;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return; // not ours to judge: relayed as Poe sent it
    }
    if (data && typeof data === 'object') this.dialect.onEvent((data as { type?: string }).type ?? ev.event, data as Record<string, unknown>, this.state);
  }

  private async relayJson(up: IncomingMessage): Promise<void> {
    const raw = await readBody(up, MAX_JSON_RESPONSE_BYTES);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new ProxyError(
        502,
        `Poe returned a response that is not valid JSON (${raw.length} bytes). Retry; if it persists, try another model.`,
        'upstream_error',
        'invalid_upstream_json',
      );
    }
    this.dialect.onJson(parsed, this.state);
    // Poe's own bytes go to the client unchanged (but for a secret it quoted back).
    this.sendJson(200, scrubSecrets(raw), rateLimitHeaders(up));
    await this.settleInBackground();
  }

  // ---- accounting ---------------------------------------------------------------------------

  private async countInput(): Promise<number> {
    const model = this.model!;
    const counts = await this.svc.tokens.count(this.inputTexts, encodingForModel(model.id, model.encoding));
    return counts.reduce((a, b) => a + b + PER_MESSAGE_OVERHEAD, 0) + this.inputImages * IMAGE_TOKEN_ESTIMATE;
  }

  /** Usage as Poe reported it, else estimated from the request and the relayed text. */
  private async usage(): Promise<void> {
    const model = this.model!;
    const { inputTokens, outputTokens, text } = this.state;
    const estimated = inputTokens === undefined || outputTokens === undefined;
    const prompt = inputTokens ?? (await this.countInput());
    const completion = outputTokens ?? (text ? await this.svc.tokens.countOne(text, encodingForModel(model.id, model.encoding)) : 0);
    this.outcome.usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, ...(estimated ? { estimated: true } : {}) };
  }

  /** The client has its answer (no footer here): the estimate now, the actual points from the reconciler later. */
  private async settleInBackground(): Promise<void> {
    await this.usage();
    void settlePoints(this.svc.usage, this.model!, this.started, this.outcome, { waitMs: 0 })
      .catch(() => undefined)
      .finally(() => this.finish());
  }

  private noteError(status: number, message: string): void {
    this.outcome.status = 'error';
    this.outcome.httpStatus = status;
    this.outcome.error = redact(message); // Poe's error text may quote the key back
  }

  // ---- writing ------------------------------------------------------------------------------

  /** SSE headers, once: pings may have sent them already while Poe had not answered. */
  private commitSse(extra: Record<string, string>): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, { ...SSE_HEADERS, ...extra });
    this.res.flushHeaders();
  }

  private sendJson(status: number, text: string, extra: Record<string, string> = {}): void {
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
    this.res.end(text);
  }

  private fail(err: unknown): void {
    if (this.abort.signal.aborted) {
      this.outcome.status = 'aborted';
      this.finish();
      return;
    }
    const pe = noteFailure(this.outcome, err);
    if (!(err instanceof ProxyError)) this.svc.logger.error(`${this.dialect.endpoint} handler crashed: ${(err as Error)?.stack ?? err}`);
    if (this.res.headersSent) {
      if (!this.res.writableEnded) this.res.end(this.dialect.errorEvent(pe, this.state));
    } else if (!this.res.destroyed) {
      this.sendJson(pe.status, JSON.stringify(this.dialect.errorBody(pe)), pe.headers);
    }
    this.finish();
  }

  /** Writes the ledger entry once, whatever path the exchange took. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const facts = {
      startedAt: this.started,
      requestId: this.req.headers['x-request-id'],
      model: this.model?.id ?? this.requestedModel,
      endpoint: this.dialect.endpoint,
      stream: this.wantsStream,
      client: this.client,
      balanceAfter: this.svc.usage.cachedBalance()?.value ?? null,
    };
    this.svc.record(ledgerEntry(facts, this.outcome), this.outcome.sentToPoe);
  }
}
