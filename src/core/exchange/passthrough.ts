/**
 * A generation request passed through to Poe in the client's own wire format (Anthropic Messages,
 * OpenAI Responses): the same gate, guards, upstream retries, points and ledger as chat completions,
 * but the answer is relayed byte for byte — whole events as they arrive, parsed on the side only to
 * pick up usage. What differs between formats lives in a `WireDialect`.
 */
import type { IncomingMessage } from 'node:http';
import { badRequest, ProxyError } from '../http/errors';
import { countImageParts, resolveRequestedModel } from './guards';
import type { LedgerEntry } from '../store/ledger';
import { scrubSecrets } from '../log';
import type { ModelEntry } from '../store/registry';
import { EventAligner } from './relay';
import { SseParser, type SseEvent } from '../poe/sse';
import { readBody } from '../poe/upstream';
import {
  Exchange,
  MAX_JSON_RESPONSE_BYTES,
  rateLimitHeaders,
  type ExchangeServices,
  type Plan,
  type Prompt,
  type RequestInfo,
  type ResponseSink,
} from './exchange';

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
  upstreamHeaders(req: RequestInfo): Record<string, string>;
  /** The body as Poe must get it (before the model id is set), when it differs from the client's. */
  upstreamBody?(body: Record<string, unknown>, req: RequestInfo): Record<string, unknown>;
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

type PassthroughPlan = Plan<Record<string, unknown>>;

export class PassthroughExchange extends Exchange<Record<string, unknown>> {
  protected readonly endpoint: LedgerEntry['endpoint'];
  private readonly state: RelayState = { text: '', completed: false };

  constructor(
    svc: ExchangeServices,
    private readonly dialect: WireDialect,
    req: RequestInfo,
    res: ResponseSink,
    client: string,
  ) {
    super(svc, req, res, client);
    this.endpoint = dialect.endpoint;
  }

  protected parse(raw: unknown): PassthroughPlan {
    const dialect = this.dialect;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest('The request body must be a JSON object.', null, 'invalid_body');
    const body = raw as Record<string, unknown>;
    const model = resolveRequestedModel(body, this.svc.registry);
    if (!model) throw badRequest('`model` is required: a poe_name or alias from models.yaml (GET /v1/models lists them).', 'model', 'missing_model');
    dialect.checkModel(model);
    if (body.stream !== undefined && typeof body.stream !== 'boolean') throw badRequest('`stream` must be true or false.', 'stream', 'invalid_type');
    dialect.validate(body);
    return { request: body, model, stream: body.stream === true };
  }

  protected answerPaused(plan: PassthroughPlan, text: string): void {
    if (plan.stream) {
      this.commitSse({});
      this.res.end(this.dialect.pausedStream(plan.model.id, text));
    } else {
      this.sendJsonText(200, JSON.stringify(this.dialect.pausedJson(plan.model.id, text)));
    }
  }

  protected async preparePrompt(plan: PassthroughPlan): Promise<Prompt> {
    let texts: string[] | undefined;
    let images: number | undefined;
    return { texts: () => (texts ??= this.dialect.inputTexts(plan.request)), images: () => (images ??= countImageParts(plan.request)) };
  }

  protected outputLimit(plan: PassthroughPlan): number | undefined {
    return this.dialect.maxOutputTokens(plan.request);
  }

  protected async forward(plan: PassthroughPlan, prompt: Prompt): Promise<void> {
    const { dialect } = this;
    const upstreamBody = JSON.stringify({ ...(dialect.upstreamBody?.(plan.request, this.req) ?? plan.request), model: plan.model.id });
    const up = await this.sendUpstream(plan, { path: dialect.upstreamPath, body: () => upstreamBody, headers: dialect.upstreamHeaders(this.req) });
    if (plan.stream) await this.relayStream(plan, prompt, up);
    else await this.relayJson(plan, prompt, up);
  }

  protected errorJson(err: ProxyError): string {
    return JSON.stringify(this.dialect.errorBody(err));
  }

  protected errorEvent(err: ProxyError): string {
    return this.dialect.errorEvent(err, this.state);
  }

  // ---- relays -------------------------------------------------------------------------------

  private async relayStream(plan: PassthroughPlan, prompt: Prompt, up: IncomingMessage): Promise<void> {
    this.commitSse(rateLimitHeaders(up));
    const parser = new SseParser();
    const aligner = new EventAligner();
    let streamError = await this.pump(
      up,
      (chunk) => {
        for (const ev of parser.push(chunk)) this.readEvent(ev);
        // Whole events only, so a key Poe quotes back (say in an error event) is never split across writes.
        const ready = aligner.push(chunk);
        // Only bytes the client received count as activity: comments or a half event Poe trickles do not.
        if (ready) this.write(scrubSecrets(ready), up);
      },
      () => {
        for (const ev of parser.end()) this.readEvent(ev);
        const rest = aligner.end();
        if (rest) this.write(scrubSecrets(rest));
      },
    );

    if (!this.signal.aborted) {
      if (!streamError && !this.state.completed && !this.state.failed) streamError = 'Poe ended the stream without finishing the answer';
      if (streamError) {
        this.svc.logger.error(`stream from Poe failed for ${plan.model.id}: ${streamError}`);
        const pe = new ProxyError(502, `${streamError}. The answer above may be incomplete; retry the request.`, 'upstream_error', 'stream_interrupted');
        this.res.end(this.errorEvent(pe));
        this.noteError(502, streamError);
      } else {
        if (this.state.failed) this.noteError(502, this.state.failed);
        this.res.end();
      }
    }
    await this.settle(plan, prompt);
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

  private async relayJson(plan: PassthroughPlan, prompt: Prompt, up: IncomingMessage): Promise<void> {
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
    this.sendJsonText(200, scrubSecrets(raw), rateLimitHeaders(up));
    await this.settle(plan, prompt);
  }

  /** Usage as Poe reported it (each figure on its own), else estimated from the request and the relayed text; then the points, in the background (no footer here). */
  private async settle(plan: PassthroughPlan, prompt: Prompt): Promise<void> {
    const { inputTokens, outputTokens, text } = this.state;
    const estimated = inputTokens === undefined || outputTokens === undefined;
    const promptTokens = inputTokens ?? (await this.countInput(plan, prompt));
    const completion = outputTokens ?? (await this.countText(plan, text));
    this.outcome.usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
      ...(estimated ? { estimated: true } : {}),
    };
    this.settleInBackground(plan);
  }
}
