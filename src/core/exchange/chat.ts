/**
 * POST /v1/chat/completions on the exchange skeleton (exchange.ts): what only chat does — its
 * validation, clipping, the 400 retry ladder, and the relay (streamed chunk by chunk, never buffered)
 * that adds the usage footer and `usage.cost_points`.
 */
import type { IncomingMessage } from 'node:http';
import { clipMessages, type ClipResult } from './clip';
import { assistantCompletion, chunk, completionAsSse, usageChunk, ZERO_USAGE } from './completions';
import { plausibleTokens } from './accounting';
import { ProxyError } from '../http/errors';
import { footerApplies, formatPoints, renderFooter, stripFooters, type FooterRequest } from './footer';
import { countImageParts, costCapError, resolveRequestedModel, unknownModelError, worstOutputLimit } from './guards';
import { budgetWarningText } from '../store/budget';
import { redact, scrubSecrets } from '../log';
import { contentText, type ChatChunk, type ChatCompletion, type ChatMessage, type ChatRequest, type Usage } from './openaiTypes';
import { estimatePoints } from '../store/registry';
import { applyRungs, LadderMemory, RUNGS } from '../poe/retryLadder';
import { SSE_DONE, SseParser, sseData } from '../poe/sse';
import { encodingForModel } from '../tokens';
import { readBody } from '../poe/upstream';
import { validateChatRequest } from './validate';
import {
  COST_HEADERS,
  Exchange,
  MAX_JSON_RESPONSE_BYTES,
  rateLimitHeaders,
  type ExchangeServices,
  type Plan,
  type Prompt,
  type RequestInfo,
  type ResponseSink,
} from './exchange';

export interface ChatServices extends ExchangeServices {
  ladder: LadderMemory;
}

type ChatPlan = Plan<ChatRequest>;

/** The conversation as it goes to Poe: clipped to the context window. */
interface ChatPrompt extends Prompt {
  readonly clip: ClipResult;
}

export class ChatExchange extends Exchange<ChatRequest> {
  protected readonly endpoint = 'chat';

  constructor(
    protected override readonly svc: ChatServices,
    req: RequestInfo,
    res: ResponseSink,
    client: string,
  ) {
    super(svc, req, res, client);
  }

  protected parse(body: unknown): ChatPlan {
    const { config, registry } = this.svc;
    const model = resolveRequestedModel(body, registry);
    const request = validateChatRequest(body);
    if (!model) throw unknownModelError(request.model, registry); // not reached: a valid body names a model
    return { request, model, stream: request.stream ?? (config.streamByDefault && model.modality === 'text') };
  }

  protected answerPaused(plan: ChatPlan, text: string): void {
    const completion = assistantCompletion(plan.model.id, text, { ...ZERO_USAGE, cost_points: 0, cost_points_estimated: false });
    if (plan.stream) {
      this.commitSse({});
      this.res.end(completionAsSse(completion, plan.request.stream_options?.include_usage === true));
    } else {
      this.sendJson(200, completion, this.costHeaders());
    }
  }

  protected async preparePrompt(plan: ChatPlan): Promise<ChatPrompt> {
    const clip = await this.clipContext(plan, stripFooters(plan.request.messages));
    this.outcome.clipped = clip.clipped;
    const { tools, functions, response_format } = plan.request as ChatRequest & { functions?: unknown };
    return {
      clip,
      // Everything Poe bills as input: the messages, tool calls, tool definitions, response schema and images.
      texts: () => {
        const texts = clip.messages.map((m) => contentText(m.content) + (m.tool_calls ? JSON.stringify(m.tool_calls) : ''));
        for (const defs of [tools, functions, response_format]) if (defs) texts.push(JSON.stringify(defs));
        return texts;
      },
      images: () => countImageParts(clip.messages),
      headers: clip.clipped
        ? { 'x-poe-proxy-clipped': `dropped=${clip.droppedMessages}; truncated=${clip.truncatedMessages}; tokens=${clip.tokens}; limit=${clip.limit}` }
        : undefined,
    };
  }

  protected outputLimit(plan: ChatPlan): number | undefined {
    return worstOutputLimit(plan.request.max_tokens, plan.request.max_completion_tokens);
  }

  protected async forward(plan: ChatPlan, prompt: ChatPrompt): Promise<void> {
    const { request, model } = plan;
    const upstreamStream = plan.stream && model.modality === 'text';
    const upstreamBody: ChatRequest = { ...request, model: model.id, messages: prompt.clip.messages, stream: upstreamStream };
    if (upstreamBody.n !== undefined) upstreamBody.n = 1;
    if (upstreamStream) upstreamBody.stream_options = { ...(request.stream_options ?? {}), include_usage: true };
    else delete upstreamBody.stream_options;

    const upRes = await this.send(plan, upstreamBody);
    if (upstreamStream) await this.relayStream(plan, prompt, upRes);
    else await this.relayJson(plan, prompt, upRes);
  }

  protected errorJson(err: ProxyError): string {
    return scrubSecrets(JSON.stringify(err.toBody()));
  }

  protected errorEvent(err: ProxyError): string {
    return scrubSecrets(sseData(JSON.stringify(err.toBody()))) + SSE_DONE;
  }

  // ---- clipping and the cap -----------------------------------------------------------------

  private async clipContext(plan: ChatPlan, messages: ChatMessage[]): Promise<ClipResult> {
    const { config, registry } = this.svc;
    const { model } = plan;
    const contextLimit = registry.contextLimit(model, config.contextLimit);
    const reserve = this.outputLimit(plan) ?? Math.min(config.outputReserve, model.maxOutputTokens ?? Number.POSITIVE_INFINITY);
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

  /**
   * True when `candidate` (a ladder rung's rewrite) no longer limits the output although the request
   * did, and the model's own worst case is above the per-message cap: the ladder must not walk around it.
   */
  private widensPastCap(plan: ChatPlan, candidate: ChatRequest): boolean {
    const { config, registry } = this.svc;
    const { model } = plan;
    if (config.maxPointsPerMessage <= 0 || this.capInput === undefined || this.outputLimit(plan) === undefined) return false;
    if (worstOutputLimit(candidate.max_tokens, candidate.max_completion_tokens) !== undefined) return false;
    return costCapError(config, registry, model, this.capInput, model.maxOutputTokens ?? config.outputReserve) !== undefined;
  }

  // ---- upstream -----------------------------------------------------------------------------

  /** Sends with the 400 ladder and bounded retries for 429/5xx/connection errors; resolves on a 200. */
  private async send(plan: ChatPlan, initial: ChatRequest): Promise<IncomingMessage> {
    const { ladder, logger } = this.svc;
    const { model } = plan;
    let rung = ladder.startRung(model.id);
    let body = applyRungs(initial, rung);
    // A remembered rung that dropped the output limit must not lift this request over the cap.
    if (this.widensPastCap(plan, body)) body = { ...body, max_tokens: initial.max_tokens, max_completion_tokens: initial.max_completion_tokens };
    const res = await this.sendUpstream(plan, {
      path: '/v1/chat/completions',
      body: () => JSON.stringify(body),
      retryNow: (status, message) => {
        if (status !== 400) return false;
        let next: ChatRequest | undefined;
        while (!next && rung < RUNGS.length) {
          next = RUNGS[rung++].apply(body);
          if (next && this.widensPastCap(plan, next)) {
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
    });
    ladder.remember(model.id, rung);
    return res;
  }

  // ---- relays -------------------------------------------------------------------------------

  private async relayStream(plan: ChatPlan, prompt: ChatPrompt, up: IncomingMessage): Promise<void> {
    const { model, request } = plan;
    this.commitSse(rateLimitHeaders(up));
    const clientWantsUsage = request.stream_options?.include_usage === true;
    const parser = new SseParser();
    let text = '';
    let sawToolCalls = false;
    let sawFinish = false;
    let heldFinish: ChatChunk | undefined;
    let upstreamUsage: Usage | undefined;
    let base = { id: '', model: model.id, created: Math.floor(this.started / 1000) };
    let streamError: string | undefined;
    // The events of one upstream read, written to the client at once: one write (one system call) per
    // read, as a blind pipe makes, instead of one per event. Nothing waits for a later read.
    let out = '';
    let poeTalked = false;
    const flush = (): void => {
      if (out) this.write(scrubSecrets(out), up);
      else if (poeTalked) this.touchPings();
      out = '';
      poeTalked = false;
    };

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
      if (obj.id) base = { id: obj.id, model: obj.model ?? model.id, created: obj.created ?? base.created };
      if (obj.usage) {
        upstreamUsage = obj.usage;
        // Held: re-sent at the end with the cost. Still Poe talking (comments and garbage are not).
        if (!obj.choices || obj.choices.length === 0) {
          poeTalked = true;
          return;
        }
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
        if (footerApplies(this.footerRequest(plan), { toolCalls: sawToolCalls || choice.finish_reason === 'tool_calls' })) {
          heldFinish = obj;
          const { content, tool_calls } = choice.delta ?? {};
          if ((typeof content === 'string' && content.length > 0) || tool_calls?.length) {
            out += sseData(JSON.stringify({ ...obj, choices: [{ ...choice, finish_reason: null }] }));
          } else {
            poeTalked = true; // held back for the footer, but Poe talking
          }
          return;
        }
      }
      out += sseData(data);
    };

    const broke = await this.pump(
      up,
      (buf) => {
        for (const ev of parser.push(buf)) handleEvent(ev.data);
        flush();
      },
      () => {
        for (const ev of parser.end()) handleEvent(ev.data);
        flush();
      },
    );
    streamError = broke ?? streamError;

    this.stopPings();
    if (this.signal.aborted) {
      this.outcome.usage = await this.usageOf(plan, prompt, text, upstreamUsage);
      this.settleInBackground(plan);
      return;
    }
    if (!streamError && !sawFinish) streamError = 'Poe ended the stream without finishing the answer';
    const usage = await this.usageOf(plan, prompt, text, upstreamUsage);
    this.outcome.usage = usage;
    if (streamError) {
      this.noteError(502, streamError);
      this.svc.logger.error(`stream from Poe failed for ${model.id}: ${streamError}`);
      const pe = new ProxyError(502, `${streamError}. The answer above may be incomplete; retry the request.`, 'upstream_error', 'stream_interrupted');
      this.write(this.errorEvent(pe));
      this.res.end();
      this.settleInBackground(plan);
      return;
    }

    // Only a footer (read by a person) may wait for the actual points; a usage chunk gets the estimate.
    const needCost = heldFinish !== undefined || clientWantsUsage;
    if (needCost) await this.settlePoints(plan, heldFinish !== undefined);
    else this.settleInBackground(plan);
    if (this.signal.aborted) return;

    if (heldFinish) {
      this.writeSse(JSON.stringify(chunk(base, { content: this.footerText(plan, prompt) })));
      const finish = heldFinish.choices[0];
      this.writeSse(JSON.stringify({ ...heldFinish, choices: [{ ...finish, delta: {}, finish_reason: finish.finish_reason }] }));
    }
    if (clientWantsUsage) this.writeSse(JSON.stringify(usageChunk(base, this.usageWithCost(usage))));
    this.res.end(SSE_DONE);
    // Without a footer or usage chunk the points settle in the background, which writes the ledger entry.
    if (needCost) this.finish();
  }

  private async relayJson(plan: ChatPlan, prompt: ChatPrompt, up: IncomingMessage): Promise<void> {
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
    const usage = await this.usageOf(plan, prompt, typeof message?.content === 'string' ? message.content : '', completion.usage);
    this.outcome.usage = usage;
    const textContent = typeof message?.content === 'string' || message?.content === null || message?.content === undefined;
    const withFooter = message !== undefined && textContent && footerApplies(this.footerRequest(plan), { toolCalls: Boolean(message.tool_calls?.length) });
    await this.settlePoints(plan, withFooter);
    if (this.signal.aborted) return;
    if (withFooter && message) message.content = (message.content ?? '') + this.footerText(plan, prompt);
    completion.usage = this.usageWithCost(usage);
    if (plan.stream) {
      this.commitSse(rateLimitHeaders(up));
      this.res.end(scrubSecrets(completionAsSse(completion, plan.request.stream_options?.include_usage === true)));
    } else {
      this.sendJson(200, completion, { ...rateLimitHeaders(up), ...this.costHeaders() });
    }
    this.finish();
  }

  // ---- usage, points, footer ----------------------------------------------------------------

  /** Poe's figures when they are plausible; negative or absurd usage is estimated instead of booked. */
  private async usageOf(plan: ChatPlan, prompt: ChatPrompt, completionText: string, upstream: Usage | undefined): Promise<Usage> {
    const reported = { prompt: plausibleTokens(upstream?.prompt_tokens), completion: plausibleTokens(upstream?.completion_tokens) };
    if (upstream && reported.prompt !== undefined && reported.completion !== undefined) {
      return { ...upstream, total_tokens: reported.prompt + reported.completion };
    }
    const promptTokens = await this.countInput(plan, prompt);
    const completion = await this.countText(plan, completionText);
    return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion, estimated: true };
  }

  private footerRequest(plan: ChatPlan): FooterRequest {
    return {
      enabled: this.svc.config.footer,
      endpoint: 'chat',
      body: plan.request,
      headers: this.req.headers,
      modality: plan.model.modality,
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

  private footerText(plan: ChatPlan, prompt: ChatPrompt): string {
    const { config, registry, usage } = this.svc;
    const { model } = plan;
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
      clippedMessages: prompt.clip.droppedMessages,
      truncatedMessages: prompt.clip.truncatedMessages,
      warnings,
    });
  }

  // ---- writing ------------------------------------------------------------------------------

  /** One event's data to the client, secrets scrubbed. */
  private writeSse(data: string): void {
    this.write(scrubSecrets(sseData(data)));
  }

  private sendJson(status: number, body: unknown, extra: Record<string, string> = {}): void {
    this.sendJsonText(status, scrubSecrets(JSON.stringify(body)), extra);
  }
}
