/**
 * POST /v1/chat/completions: validation, guards, clipping, the retry ladder, and the relay
 * (streamed chunk by chunk, never buffered) with the usage footer and the ledger entry.
 */
import type { IncomingMessage } from 'node:http';
import { clipMessages, type ClipResult } from './clip';
import { assistantCompletion, chunk, completionAsSse, usageChunk, ZERO_USAGE } from './completions';
import type { ProxyConfig } from '../store/config';
import { ledgerEntry, newOutcome, noteFailure, plausibleTokens, settlePoints } from './accounting';
import { ProxyError } from '../http/errors';
import { footerApplies, formatPoints, renderFooter, stripFooters, type FooterRequest } from './footer';
import {
  costCapError,
  countImageParts,
  IMAGE_TOKEN_ESTIMATE,
  noApiKeyError,
  pausedAnswer,
  resolveRequestedModel,
  unknownModelError,
  worstOutputLimit,
} from './guards';
import { budgetWarningText, type SpendTracker } from '../store/budget';
import type { LedgerEntry } from '../store/ledger';
import { redact, scrubSecrets, type Logger } from '../log';
import { contentText, type ChatChunk, type ChatCompletion, type ChatMessage, type ChatRequest, type Usage } from './openaiTypes';
import { estimatePoints, type ModelEntry, type ModelRegistry } from '../store/registry';
import { relayWrite, SSE_HEADERS } from './relay';
import { applyRungs, LadderMemory, RUNGS } from '../poe/retryLadder';
import { SSE_DONE, SSE_PING, SseParser, sseData } from '../poe/sse';
import { encodingForModel, type TokenCounter } from '../tokens';
import { readBody, type UpstreamClient } from '../poe/upstream';
import { sendWithRetries } from '../poe/upstreamRetry';
import type { PoeUsage } from '../poe/usage';
import { validateChatRequest } from './validate';

export interface ChatServices {
  config: ProxyConfig;
  registry: ModelRegistry;
  upstream: UpstreamClient;
  usage: PoeUsage;
  tokens: TokenCounter;
  ladder: LadderMemory;
  logger: Logger;
  getApiKey(): string | undefined;
  /** `sentToPoe`: anything went to Poe (a line in the ledger), else a refusal (only counted). */
  record(entry: LedgerEntry, sentToPoe: boolean): void;
  /** Today's and this month's spend, for the budgets (absent: no budgets). */
  spend?: SpendTracker;
  /**
   * Rate-limit admission for requests that do not come through the HTTP gate (the in-process path):
   * throws the 429 ProxyError, or returns the slot's release.
   */
  admit?(client: string): () => void;
  /** True once the server stops: a stream cut then was cut by us, not by Poe. */
  isShuttingDown?(): boolean;
}

/** Why an upstream stream ended early, for the ledger, the log and the client's error event. */
export function streamBrokeOff(svc: Pick<ChatServices, 'isShuttingDown'>, detail?: string): string {
  if (svc.isShuttingDown?.()) return 'The Poe proxy shut down before the answer was complete (the grace period ran out)';
  return detail ? `Poe's stream broke off: ${detail}` : "Poe's stream broke off before it was complete";
}

/**
 * Where an exchange writes its answer. Node's ServerResponse satisfies it structurally; inProcess.ts
 * has an in-memory one so VS Code's language-model provider runs the same pipeline without HTTP.
 */
export interface ResponseSink {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  flushHeaders(): void;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
}

/** The request fields an exchange reads: its headers (`x-request-id`, `x-poe-proxy-footer`), and whether it came in process. */
export interface RequestInfo {
  readonly headers: Record<string, string | string[] | undefined>;
  /** Sent by an editor in process (Copilot Chat), not over HTTP. */
  readonly inProcess?: boolean;
}

/** Response headers reporting an answer's cost out of band (the footer may be off or not allowed). */
export const COST_HEADERS = { points: 'x-poe-points', estimated: 'x-poe-points-estimated', balance: 'x-poe-balance' } as const;

const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;
const PER_MESSAGE_OVERHEAD = 4;

export class ChatExchange {
  private readonly started = Date.now();
  private readonly abort = new AbortController();
  private sseCommitted = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private request!: ChatRequest;
  private model: ModelEntry | undefined;
  private wantsStream = false;
  private clip: ClipResult | undefined;
  /** The `model` the client sent, as sent (capped when the ledger entry is made). */
  private requestedModel = '';
  /** Input tokens the cost cap counted (kept for the ladder's check). */
  private capInput: number | undefined;
  private readonly outcome = newOutcome();

  constructor(
    private readonly svc: ChatServices,
    private readonly req: RequestInfo,
    private readonly res: ResponseSink,
    private readonly client: string,
  ) {
    // A client that goes away stops the upstream request at once: points must not keep burning.
    res.once('close', () => {
      if (!res.writableFinished) {
        this.outcome.status = 'aborted';
        this.abort.abort();
      }
      this.stopPings();
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  async run(body: unknown): Promise<void> {
    try {
      await this.handle(body);
    } catch (err) {
      this.fail(err);
    } finally {
      this.stopPings();
    }
  }

  private async handle(body: unknown): Promise<void> {
    const { config, registry } = this.svc;
    const requested = (body as { model?: unknown } | null)?.model;
    if (typeof requested === 'string') this.requestedModel = requested; // the ledger names even an unknown model
    // The model first: an unknown one is the 404 that names it, whatever else is wrong with the body.
    const model = resolveRequestedModel(body, registry);
    this.request = validateChatRequest(body);
    if (!model) throw unknownModelError(this.request.model, registry); // not reached: a valid body names a model
    this.model = model;
    this.wantsStream = this.request.stream ?? (config.streamByDefault && model.modality === 'text');
    if (!this.svc.getApiKey()) throw noApiKeyError();

    if (await this.pausedByBalance()) return;

    const messages = stripFooters(this.request.messages);
    this.clip = await this.clipContext(messages, model);
    this.outcome.clipped = this.clip.clipped;
    await this.checkCostCap(model, this.clip);

    const upstreamStream = this.wantsStream && model.modality === 'text';
    const upstreamBody: ChatRequest = { ...this.request, model: model.id, messages: this.clip.messages, stream: upstreamStream };
    if (upstreamBody.n !== undefined) upstreamBody.n = 1;
    if (upstreamStream) upstreamBody.stream_options = { ...(this.request.stream_options ?? {}), include_usage: true };
    else delete upstreamBody.stream_options;

    if (this.wantsStream) this.startPings();
    const upRes = await this.send(upstreamBody, model);
    if (upstreamStream) await this.relayStream(upRes, model);
    else await this.relayJson(upRes, model);
  }

  // ---- guards -------------------------------------------------------------------------------

  private async pausedByBalance(): Promise<boolean> {
    const text = await pausedAnswer(this.svc.config, this.svc.usage, this.svc.spend);
    if (text === undefined) return false;
    const completion = assistantCompletion(this.model!.id, text, { ...ZERO_USAGE, cost_points: 0, cost_points_estimated: false });
    this.outcome.status = 'paused';
    this.outcome.points = 0;
    if (this.wantsStream) {
      this.commitSse({});
      this.res.end(completionAsSse(completion, this.request.stream_options?.include_usage === true));
    } else {
      this.sendJson(200, completion, this.costHeaders());
    }
    this.finish();
    return true;
  }

  private async clipContext(messages: ChatMessage[], model: ModelEntry): Promise<ClipResult> {
    const { config, registry } = this.svc;
    const contextLimit = registry.contextLimit(model, config.contextLimit);
    const reserve = this.outputLimit() ?? Math.min(config.outputReserve, model.maxOutputTokens ?? Number.POSITIVE_INFINITY);
    // Never let a huge reserve leave no room at all for the conversation.
    const limit = Math.max(Math.floor(contextLimit / 4), contextLimit - reserve);
    const result = await clipMessages(messages, { limit, encoding: encodingForModel(model.id, model.encoding) }, this.svc.tokens);
    if (result.clipped) {
      this.svc.logger.info(
        `clipped context for ${model.id}: dropped ${result.droppedMessages}, shortened ${result.truncatedMessages}, ~${result.tokens}/${limit} tokens`,
      );
    }
    return result;
  }

  private async checkCostCap(model: ModelEntry, clip: ClipResult): Promise<void> {
    if (this.svc.config.maxPointsPerMessage <= 0) return;
    const input = await this.countPromptTokens(clip);
    this.capInput = input;
    const output = this.outputLimit() ?? model.maxOutputTokens ?? this.svc.config.outputReserve;
    const refusal = costCapError(this.svc.config, this.svc.registry, model, input, output);
    if (!refusal) return;
    this.outcome.status = 'refused';
    throw refusal;
  }

  /**
   * True when `candidate` (a ladder rung's rewrite) no longer limits the output although the request
   * did, and the model's own worst case is above the per-message cap: the ladder must not walk around it.
   */
  private widensPastCap(candidate: ChatRequest): boolean {
    const { config, registry } = this.svc;
    const model = this.model!;
    if (config.maxPointsPerMessage <= 0 || this.capInput === undefined || this.outputLimit() === undefined) return false;
    if (worstOutputLimit(candidate.max_tokens, candidate.max_completion_tokens) !== undefined) return false;
    return costCapError(config, registry, model, this.capInput, model.maxOutputTokens ?? config.outputReserve) !== undefined;
  }

  /** The largest output limit the request sets, whichever field (the cap counts the worst case). */
  private outputLimit(): number | undefined {
    return worstOutputLimit(this.request.max_tokens, this.request.max_completion_tokens);
  }

  /** Everything Poe bills as input: the messages, tool calls, tool definitions, response schema and images. */
  private async countPromptTokens(clip: ClipResult): Promise<number> {
    const { tools, functions, response_format } = this.request as ChatRequest & { functions?: unknown };
    const texts = clip.messages.map((m) => contentText(m.content) + (m.tool_calls ? JSON.stringify(m.tool_calls) : ''));
    for (const defs of [tools, functions, response_format]) if (defs) texts.push(JSON.stringify(defs));
    const counts = await this.svc.tokens.count(texts, encodingForModel(this.model!.id, this.model!.encoding));
    return counts.reduce((a, b) => a + b + PER_MESSAGE_OVERHEAD, 0) + countImageParts(clip.messages) * IMAGE_TOKEN_ESTIMATE;
  }

  // ---- upstream -----------------------------------------------------------------------------

  /** Sends with the 400 ladder and bounded retries for 429/5xx/connection errors; resolves on a 200. */
  private async send(initial: ChatRequest, model: ModelEntry): Promise<IncomingMessage> {
    const { upstream, ladder, logger, config } = this.svc;
    let rung = ladder.startRung(model.id);
    let body = applyRungs(initial, rung);
    this.outcome.sentToPoe = true;
    // A remembered rung that dropped the output limit must not lift this request over the cap.
    if (this.widensPastCap(body)) body = { ...body, max_tokens: initial.max_tokens, max_completion_tokens: initial.max_completion_tokens };
    const res = await sendWithRetries({
      upstream,
      config,
      logger,
      signal: this.signal,
      path: '/v1/chat/completions',
      body: () => JSON.stringify(body),
      label: model.id,
      retryNow: (status, message) => {
        if (status !== 400) return false;
        let next: ChatRequest | undefined;
        while (!next && rung < RUNGS.length) {
          next = RUNGS[rung++].apply(body);
          if (next && this.widensPastCap(next)) {
            logger.warn(
              `Poe 400 for ${model.id}: skipped rung ${rung} (${RUNGS[rung - 1].name}): without the output limit the request could cost more than the per-message cap`,
            );
            next = undefined;
          }
        }
        if (!next) return false;
        logger.warn(`Poe 400 for ${model.id}: "${message}"; retrying with rung ${rung}: ${RUNGS[rung - 1].name}`);
        body = next;
        return true;
      },
      onRetry: () => this.outcome.retries++,
    });
    ladder.remember(model.id, rung);
    return res;
  }

  // ---- relays -------------------------------------------------------------------------------

  private async relayStream(up: IncomingMessage, model: ModelEntry): Promise<void> {
    this.commitSse(rateLimitHeaders(up));
    const clientWantsUsage = this.request.stream_options?.include_usage === true;
    const parser = new SseParser();
    let text = '';
    let sawToolCalls = false;
    let sawFinish = false;
    let heldFinish: ChatChunk | undefined;
    let upstreamUsage: Usage | undefined;
    let base = { id: '', model: model.id, created: Math.floor(this.started / 1000) };
    let streamError: string | undefined;

    const handleEvent = (data: string): void => {
      if (data === '[DONE]') return;
      let obj: ChatChunk & { error?: { message?: string } };
      try {
        obj = JSON.parse(data);
      } catch {
        this.svc.logger.debug(`ignored a malformed SSE line from Poe: ${data.slice(0, 120)}`);
        return;
      }
      if (obj.error) {
        streamError = redact(obj.error.message ?? 'Poe reported an error mid-stream'); // Poe may quote the key back
        return;
      }
      // A well-formed event is Poe talking (even one held back for the footer); comments and garbage are not.
      this.notePing();
      if (obj.id) base = { id: obj.id, model: obj.model ?? model.id, created: obj.created ?? base.created };
      if (obj.usage) {
        upstreamUsage = obj.usage;
        if (!obj.choices || obj.choices.length === 0) return; // held: re-sent at the end with the cost
        delete obj.usage;
        data = JSON.stringify(obj);
      }
      const choice = obj.choices?.[0];
      if (choice?.delta) {
        if (typeof choice.delta.content === 'string') text += choice.delta.content;
        if (choice.delta.tool_calls?.length) sawToolCalls = true;
      }
      if (choice?.finish_reason) {
        sawFinish = true;
        if (footerApplies(this.footerRequest(), { toolCalls: sawToolCalls || choice.finish_reason === 'tool_calls' })) {
          heldFinish = obj;
          const { content, tool_calls } = choice.delta ?? {};
          if ((typeof content === 'string' && content.length > 0) || tool_calls?.length) {
            this.write(sseData(JSON.stringify({ ...obj, choices: [{ ...choice, finish_reason: null }] })), up);
          }
          return;
        }
      }
      this.write(sseData(data), up);
    };

    await new Promise<void>((resolve) => {
      const done = (): void => {
        up.removeAllListeners('data');
        resolve();
      };
      up.on('data', (buf: Buffer) => {
        try {
          for (const ev of parser.push(buf)) handleEvent(ev.data);
        } catch (err) {
          streamError = (err as Error).message;
          up.destroy();
        }
      });
      up.once('end', () => {
        for (const ev of parser.end()) handleEvent(ev.data);
        done();
      });
      up.once('error', (err) => {
        if (!this.signal.aborted) streamError = streamBrokeOff(this.svc, err.message);
      });
      up.once('close', () => {
        if (!up.complete && !this.signal.aborted && !streamError) streamError = streamBrokeOff(this.svc);
        done();
      });
    });

    this.stopPings();
    if (this.signal.aborted) {
      this.outcome.usage = await this.estimateUsage(text, upstreamUsage);
      this.settlePointsInBackground(model);
      return;
    }
    if (!streamError && !sawFinish) streamError = 'Poe ended the stream without finishing the answer';
    const usage = await this.estimateUsage(text, upstreamUsage);
    this.outcome.usage = usage;
    if (streamError) {
      this.outcome.status = 'error';
      this.outcome.httpStatus = 502;
      this.outcome.error = streamError;
      this.svc.logger.error(`stream from Poe failed for ${model.id}: ${streamError}`);
      this.write(
        sseData(
          JSON.stringify({
            error: {
              message: `${streamError}. The answer above may be incomplete; retry the request.`,
              type: 'upstream_error',
              param: null,
              code: 'stream_interrupted',
            },
          }),
        ),
      );
      this.res.end(SSE_DONE);
      this.settlePointsInBackground(model);
      return;
    }

    // Only a footer (read by a person) may wait for the actual points; a usage chunk gets the estimate.
    const needCost = heldFinish !== undefined || clientWantsUsage;
    if (needCost) await this.settlePoints(model, heldFinish !== undefined);
    else this.settlePointsInBackground(model);
    if (this.signal.aborted) return;

    if (heldFinish) {
      this.write(sseData(JSON.stringify(chunk(base, { content: this.footerText(model) }))));
      const finish = heldFinish.choices[0];
      this.write(sseData(JSON.stringify({ ...heldFinish, choices: [{ ...finish, delta: {}, finish_reason: finish.finish_reason }] })));
    }
    if (clientWantsUsage) this.write(sseData(JSON.stringify(usageChunk(base, this.usageWithCost(usage)))));
    this.res.end(SSE_DONE);
    // Without a footer or usage chunk the points settle in the background, which writes the ledger entry.
    if (needCost) this.finish();
  }

  private async relayJson(up: IncomingMessage, model: ModelEntry): Promise<void> {
    const raw = await readBody(up, MAX_JSON_RESPONSE_BYTES);
    let completion: ChatCompletion;
    try {
      completion = JSON.parse(raw) as ChatCompletion;
      if (!completion || !Array.isArray(completion.choices)) throw new Error('no choices');
    } catch {
      throw new ProxyError(
        502,
        `Poe returned a response that is not valid chat-completion JSON (${raw.length} bytes). Retry; if it persists, try another model.`,
        'upstream_error',
        'invalid_upstream_json',
      );
    }
    const message = completion.choices[0]?.message;
    const usage = await this.estimateUsage(typeof message?.content === 'string' ? message.content : '', completion.usage);
    this.outcome.usage = usage;
    const textContent = typeof message?.content === 'string' || message?.content === null || message?.content === undefined;
    const withFooter = message !== undefined && textContent && footerApplies(this.footerRequest(), { toolCalls: Boolean(message.tool_calls?.length) });
    await this.settlePoints(model, withFooter);
    if (this.signal.aborted) return;
    if (withFooter && message) message.content = (message.content ?? '') + this.footerText(model);
    completion.usage = this.usageWithCost(usage);
    if (this.wantsStream) {
      this.commitSse(rateLimitHeaders(up));
      this.res.end(scrubSecrets(completionAsSse(completion, this.request.stream_options?.include_usage === true)));
    } else {
      this.sendJson(200, completion, { ...rateLimitHeaders(up), ...this.costHeaders() });
    }
    this.finish();
  }

  // ---- usage, points, footer ----------------------------------------------------------------

  private async estimateUsage(completionText: string, upstream: Usage | undefined): Promise<Usage> {
    // Poe's figures when they are plausible; negative or absurd usage is estimated instead of booked.
    const reported = { prompt: plausibleTokens(upstream?.prompt_tokens), completion: plausibleTokens(upstream?.completion_tokens) };
    if (upstream && reported.prompt !== undefined && reported.completion !== undefined) {
      return { ...upstream, total_tokens: reported.prompt + reported.completion };
    }
    const prompt = this.clip ? await this.countPromptTokens(this.clip) : 0;
    const completion = completionText ? await this.svc.tokens.countOne(completionText, encodingForModel(this.model!.id, this.model!.encoding)) : 0;
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, estimated: true };
  }

  /** A footer waits for the actual points at most POINTS_WAIT_MS; anything else takes the estimate at once. */
  private settlePoints(model: ModelEntry, forFooter: boolean): Promise<void> {
    return settlePoints(this.svc.usage, model, this.started, this.outcome, { waitMs: forFooter ? this.svc.config.pointsWaitMs : 0, signal: this.signal });
  }

  private settlePointsInBackground(model: ModelEntry): void {
    // Estimated at once (the reconciler books the actual points): an aborted request may still have been charged.
    void this.settlePoints(model, false)
      .catch(() => undefined)
      .finally(() => this.finish());
  }

  private footerRequest(): FooterRequest {
    return {
      enabled: this.svc.config.footer,
      endpoint: 'chat',
      body: this.request,
      headers: this.req.headers,
      modality: this.model?.modality ?? 'text',
      inProcess: this.req.inProcess,
    };
  }

  /** The cost as response headers, for JSON answers (a stream's headers leave before the cost is known). */
  private costHeaders(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.outcome.points !== null) {
      out[COST_HEADERS.points] = String(this.outcome.points);
      out[COST_HEADERS.estimated] = String(this.outcome.pointsEstimated);
    }
    const balance = this.svc.usage.cachedBalance()?.value;
    if (balance !== undefined && balance !== null) out[COST_HEADERS.balance] = String(balance);
    return out;
  }

  private usageWithCost(usage: Usage): Usage {
    return { ...usage, cost_points: this.outcome.points, cost_points_estimated: this.outcome.pointsEstimated };
  }

  private footerText(model: ModelEntry): string {
    const { config, registry, usage } = this.svc;
    const u = this.outcome.usage ?? ZERO_USAGE;
    const warnings: string[] = [];
    const points = this.outcome.points;
    if (points !== null && config.pointsPerMessageWarn > 0 && points > config.pointsPerMessageWarn) {
      const tokens = u.prompt_tokens + u.completion_tokens;
      const cheaper = registry.cheaperThan(model, tokens);
      warnings.push(
        `This message cost ${formatPoints(points)} points, above your warning threshold of ${formatPoints(config.pointsPerMessageWarn)}.` +
          (cheaper.length
            ? ` Cheaper ${model.modality} models: ${cheaper.map((m) => `${m.id} (~${formatPoints(estimatePoints(m, tokens))})`).join(', ')}.`
            : ''),
      );
    }
    for (const b of this.svc.spend?.nearlyExhausted(config, points ?? 0) ?? []) warnings.push(budgetWarningText(b, formatPoints));
    return renderFooter({
      promptTokens: u.prompt_tokens,
      completionTokens: u.completion_tokens,
      points,
      pointsEstimated: this.outcome.pointsEstimated,
      balance: usage.cachedBalance()?.value ?? null,
      clippedMessages: this.clip?.droppedMessages,
      truncatedMessages: this.clip?.truncatedMessages,
      warnings,
    });
  }

  // ---- writing ------------------------------------------------------------------------------

  private commitSse(extra: Record<string, string>): void {
    if (this.sseCommitted) return;
    this.sseCommitted = true;
    this.res.writeHead(200, {
      ...SSE_HEADERS,
      ...this.clipHeaders(),
      ...extra,
    });
    this.res.flushHeaders();
  }

  private clipHeaders(): Record<string, string> {
    if (!this.clip?.clipped) return {};
    return {
      'x-poe-proxy-clipped': `dropped=${this.clip.droppedMessages}; truncated=${this.clip.truncatedMessages}; tokens=${this.clip.tokens}; limit=${this.clip.limit}`,
    };
  }

  /** Writes to the client; when its buffer is full, pauses the upstream until it drains (backpressure). */
  private write(data: string, up?: IncomingMessage): void {
    relayWrite(this.res, scrubSecrets(data), up);
    // Only what the client received counts as activity: Poe's comments and ignored lines do not.
    this.notePing();
  }

  private sendJson(status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = scrubSecrets(JSON.stringify(body));
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...this.clipHeaders(), ...extra });
    this.res.end(text);
  }

  /** While waiting for Poe's headers (reasoning models can think for minutes), keep the client's connection alive. */
  private startPings(): void {
    const every = this.svc.config.keepAliveIntervalMs;
    if (every <= 0) return;
    this.pingTimer = setInterval(() => {
      if (this.res.writableEnded) return this.stopPings();
      this.commitSse({});
      this.res.write(SSE_PING);
    }, every);
    this.pingTimer.unref();
  }

  private notePing(): void {
    this.pingTimer?.refresh();
  }

  private stopPings(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  private fail(err: unknown): void {
    if (this.signal.aborted) {
      this.outcome.status = 'aborted';
      this.finish();
      return;
    }
    const pe = noteFailure(this.outcome, err);
    if (!(err instanceof ProxyError)) this.svc.logger.error(`chat handler crashed: ${(err as Error)?.stack ?? err}`);
    if (this.res.headersSent) {
      this.write(sseData(JSON.stringify(pe.toBody())));
      this.res.end(SSE_DONE);
    } else {
      this.sendJson(pe.status, pe.toBody(), pe.headers);
    }
    this.finish();
  }

  /** Writes the ledger entry once, whatever path the exchange took. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const model = this.model?.id ?? this.requestedModel;
    const balanceAfter = this.svc.usage.cachedBalance()?.value ?? null;
    const entry = ledgerEntry(
      {
        startedAt: this.started,
        requestId: this.req.headers['x-request-id'],
        model,
        endpoint: 'chat',
        stream: this.wantsStream,
        client: this.client,
        balanceAfter,
      },
      this.outcome,
    );
    this.svc.record(entry, this.outcome.sentToPoe);
  }
}

/** Poe's rate-limit headers, echoed to the client. */
export function rateLimitHeaders(up: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(up.headers)) {
    if (k.startsWith('x-ratelimit-') && typeof v === 'string') out[k] = v;
  }
  return out;
}
