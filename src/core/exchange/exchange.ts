/**
 * The skeleton every generation endpoint runs (chat completions, Anthropic Messages, Responses): the
 * services it uses, where it writes (a sink), and its lifecycle — abort when the client goes away,
 * keep-alive pings while Poe is silent, the guards in order, the send with retries, the relay's
 * stream-end bookkeeping, the points, the failure answer and the one ledger entry. A dialect module
 * (chat.ts, passthrough.ts with anthropic.ts / responses.ts) supplies only what differs: how a body
 * becomes a plan, its prompt, its wire formats and its relay.
 */
import type { IncomingMessage } from 'node:http';
import { ledgerEntry, newOutcome, noteFailure, PER_MESSAGE_OVERHEAD, settlePoints } from './accounting';
import type { ProxyConfig } from '../store/config';
import { ProxyError } from '../http/errors';
import { costCapError, IMAGE_TOKEN_ESTIMATE, noApiKeyError, pausedAnswer } from './guards';
import type { SpendTracker } from '../store/budget';
import type { LedgerEntry } from '../store/ledger';
import { redact, type Logger } from '../log';
import type { ModelEntry, ModelRegistry } from '../store/registry';
import { KeepAlive, relayWrite, SSE_HEADERS } from './relay';
import { SSE_PING } from '../poe/sse';
import { encodingForModel, type TokenCounter } from '../tokens';
import type { UpstreamClient } from '../poe/upstream';
import { sendWithRetries, type RetryingSend } from '../poe/upstreamRetry';
import type { PoeUsage } from '../poe/usage';

export interface ExchangeServices {
  config: ProxyConfig;
  registry: ModelRegistry;
  upstream: UpstreamClient;
  usage: PoeUsage;
  tokens: TokenCounter;
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
  write(chunk: string | Buffer): boolean;
  end(chunk?: string | Buffer): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
}

/** The request fields an exchange reads: its headers (`x-request-id`, `x-poe-proxy-footer`, Anthropic's), and whether it came in process. */
export interface RequestInfo {
  readonly headers: Record<string, string | string[] | undefined>;
  /** Sent by an editor in process (Copilot Chat), not over HTTP. */
  readonly inProcess?: boolean;
}

/** Response headers reporting an answer's cost out of band (the footer may be off or not allowed). */
export const COST_HEADERS = { points: 'x-poe-points', estimated: 'x-poe-points-estimated', balance: 'x-poe-balance' } as const;

/** The largest non-streamed answer read from Poe. */
export const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Why an upstream stream ended early, for the ledger, the log and the client's error event. */
export function streamBrokeOff(svc: Pick<ExchangeServices, 'isShuttingDown'>, detail?: string): string {
  if (svc.isShuttingDown?.()) return 'The Poe proxy shut down before the answer was complete (the grace period ran out)';
  return detail ? `Poe's stream broke off: ${detail}` : "Poe's stream broke off before it was complete";
}

/** Poe's rate-limit headers, echoed to the client. */
export function rateLimitHeaders(up: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in up.headers) {
    const v = up.headers[k];
    if (typeof v === 'string' && k.startsWith('x-ratelimit-')) out[k] = v;
  }
  return out;
}

/** What a valid request asks for, fixed once its body passed validation. */
export interface Plan<R> {
  /** The body as validated (the dialect's request type). */
  readonly request: R;
  readonly model: ModelEntry;
  /** The client wants an event stream. */
  readonly stream: boolean;
}

/** The input Poe bills, as the cost cap and token estimates count it. Built once per exchange (lazily: only a cap or a missing usage needs it). */
export interface Prompt {
  /** One text per message or tool definition. */
  texts(): string[];
  /** Image parts in the input, counted IMAGE_TOKEN_ESTIMATE tokens each. */
  images(): number;
  /** Response headers that describe the prompt (chat: what clipping did). */
  readonly headers?: Readonly<Record<string, string>>;
}

export abstract class Exchange<R, P extends Plan<R> = Plan<R>> {
  protected readonly started = Date.now();
  protected readonly outcome = newOutcome();
  private readonly abort = new AbortController();
  /** SSE comments while Poe is silent (before its headers, or between events): clients must not time out. */
  private readonly pings: KeepAlive;
  private sseCommitted = false;
  private finished = false;
  /** This exchange wrote the response's head (SSE or JSON); false when the server answered for it at shutdown. */
  private answered = false;
  /** The `model` the client sent, as sent (the ledger names even an unknown model; capped there). */
  private requestedModel = '';
  /** Set once, when the body is valid; the ledger entry reads it. */
  private plan: P | undefined;
  /** Set once, after the guards that need no prompt; response headers read it. */
  private prompt: Prompt | undefined;
  /** Input tokens the cost cap counted (chat's ladder checks its rewrites against the same figure). */
  protected capInput: number | undefined;

  protected abstract readonly endpoint: LedgerEntry['endpoint'];

  constructor(
    protected readonly svc: ExchangeServices,
    protected readonly req: RequestInfo,
    protected readonly res: ResponseSink,
    private readonly client: string,
  ) {
    this.pings = new KeepAlive(svc.config.keepAliveIntervalMs, () => {
      if (res.writableEnded) return this.pings.stop();
      this.commitSse({});
      res.write(SSE_PING);
    });
    // A client that goes away stops the upstream request at once: points must not keep burning. So does a
    // response someone else answered (the server's 503 at shutdown for a JSON request still waiting): nobody reads on.
    res.once('close', () => {
      if (!res.writableFinished) {
        this.outcome.status = 'aborted';
        this.abort.abort();
      } else if (!this.answered) {
        this.abort.abort();
      }
      this.pings.stop();
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  // ---- what a dialect supplies ----------------------------------------------------------------

  /** The body's validation steps, in the dialect's order: a plan, or a ProxyError (nothing reaches Poe). */
  protected abstract parse(body: unknown): P;
  /** The paused answer (balance below the cutoff, a budget used up), in the dialect's format. */
  protected abstract answerPaused(plan: P, text: string): void;
  /** The input as Poe will get it (chat clips it here). */
  protected abstract preparePrompt(plan: P): Promise<Prompt>;
  /** The largest output the request allows, if it sets one (the cost cap counts the worst case). */
  protected abstract outputLimit(plan: P): number | undefined;
  /** Sends to Poe (through `sendUpstream`) and relays the answer. */
  protected abstract forward(plan: P, prompt: Prompt): Promise<void>;
  /** A failure before the answer started, as the dialect's JSON error body (text). */
  protected abstract errorJson(err: ProxyError): string;
  /** A failure after the stream started: the dialect's error event(s) ending it. */
  protected abstract errorEvent(err: ProxyError): string;

  // ---- lifecycle ------------------------------------------------------------------------------

  async run(body: unknown): Promise<void> {
    try {
      await this.handle(body);
    } catch (err) {
      this.fail(err);
    } finally {
      this.pings.stop();
    }
  }

  /**
   * The steps, in order. The model comes first inside `parse`: an unknown one is the 404 that names it,
   * whatever else is wrong with the body. A step that answers by itself (the pause) ends the exchange.
   */
  private async handle(body: unknown): Promise<void> {
    const requested = (body as { model?: unknown } | null)?.model;
    if (typeof requested === 'string') this.requestedModel = requested;
    const plan = (this.plan = this.parse(body));
    if (!this.svc.getApiKey()) throw noApiKeyError();
    if (await this.pausedByBalance(plan)) return;
    const prompt = (this.prompt = await this.preparePrompt(plan));
    await this.checkCostCap(plan, prompt);
    if (plan.stream) this.pings.start();
    await this.forward(plan, prompt);
  }

  // ---- guards ---------------------------------------------------------------------------------

  private async pausedByBalance(plan: P): Promise<boolean> {
    const text = await pausedAnswer(this.svc.config, this.svc.usage, this.svc.spend);
    if (text === undefined) return false;
    this.outcome.status = 'paused';
    this.outcome.points = 0;
    this.answerPaused(plan, text);
    this.finish();
    return true;
  }

  private async checkCostCap(plan: P, prompt: Prompt): Promise<void> {
    const { config, registry } = this.svc;
    if (config.maxPointsPerMessage <= 0) return;
    const input = await this.countInput(plan, prompt);
    this.capInput = input;
    const output = this.outputLimit(plan) ?? plan.model.maxOutputTokens ?? config.outputReserve;
    const refusal = costCapError(config, registry, plan.model, input, output);
    if (!refusal) return;
    this.outcome.status = 'refused';
    throw refusal;
  }

  // ---- upstream -------------------------------------------------------------------------------

  /** Sends to Poe with bounded retries for 429/5xx/connection errors (and the dialect's `retryNow`); resolves on a 200. */
  protected sendUpstream(plan: P, opts: Pick<RetryingSend, 'path' | 'body' | 'headers' | 'retryNow'>): Promise<IncomingMessage> {
    const { upstream, config, logger } = this.svc;
    this.outcome.sentToPoe = true;
    return sendWithRetries({ upstream, config, logger, signal: this.signal, label: plan.model.id, onRetry: () => this.outcome.retries++, ...opts });
  }

  /**
   * Feeds `up`'s chunks to `onData` until the stream ends; resolves with why it broke off early, if it
   * did (undefined when it ended cleanly or the client went away). `onData` throwing ends it too.
   */
  protected pump(up: IncomingMessage, onData: (chunk: Buffer) => void, onEnd: () => void): Promise<string | undefined> {
    return new Promise((resolve) => {
      let broke: string | undefined;
      const done = (): void => {
        up.removeAllListeners('data');
        resolve(broke);
      };
      up.on('data', (chunk: Buffer) => {
        try {
          onData(chunk);
        } catch (err) {
          broke = (err as Error).message;
          up.destroy();
        }
      });
      up.once('end', () => {
        onEnd();
        done();
      });
      up.once('error', (err) => {
        if (!this.signal.aborted && !broke) broke = streamBrokeOff(this.svc, err.message);
      });
      up.once('close', () => {
        if (!up.complete && !this.signal.aborted && !broke) broke = streamBrokeOff(this.svc);
        done();
      });
    });
  }

  // ---- usage and points -----------------------------------------------------------------------

  /** Everything Poe bills as input, counted with the model's tokenizer. */
  protected async countInput(plan: P, prompt: Prompt): Promise<number> {
    const counts = await this.svc.tokens.count(prompt.texts(), encodingForModel(plan.model.id, plan.model.encoding));
    return counts.reduce((a, b) => a + b + PER_MESSAGE_OVERHEAD, 0) + prompt.images() * IMAGE_TOKEN_ESTIMATE;
  }

  /** Tokens in generated text (an estimate when Poe reports no usage). */
  protected async countText(plan: P, text: string): Promise<number> {
    return text ? await this.svc.tokens.countOne(text, encodingForModel(plan.model.id, plan.model.encoding)) : 0;
  }

  /** A footer waits for the actual points at most POINTS_WAIT_MS; anything else takes the estimate at once. */
  protected settlePoints(plan: P, forFooter: boolean): Promise<void> {
    return settlePoints(this.svc.usage, plan.model, this.started, this.outcome, { waitMs: forFooter ? this.svc.config.pointsWaitMs : 0, signal: this.signal });
  }

  /** The client has its answer: the estimate now (the reconciler books the actual points later), then the ledger entry. */
  protected settleInBackground(plan: P): void {
    // An aborted request may still have been charged: it is settled too.
    void this.settlePoints(plan, false)
      .catch(() => undefined)
      .finally(() => this.finish());
  }

  protected noteError(status: number, message: string): void {
    this.outcome.status = 'error';
    this.outcome.httpStatus = status;
    this.outcome.error = redact(message); // Poe's error text may quote the key back
  }

  // ---- writing --------------------------------------------------------------------------------

  /** SSE headers, once: pings may have sent them already while Poe had not answered. */
  protected commitSse(extra: Record<string, string>): void {
    if (this.sseCommitted) return;
    this.sseCommitted = true;
    this.answered = true;
    this.res.writeHead(200, { ...SSE_HEADERS, ...this.prompt?.headers, ...extra });
    this.res.flushHeaders();
  }

  /** Writes to the client; when its buffer is full, pauses `up` until it drains (backpressure). */
  protected write(data: string | Buffer, up?: IncomingMessage): void {
    relayWrite(this.res, data, up);
    // Only what the client received counts as activity: Poe's comments and ignored lines do not.
    this.pings.touch();
  }

  /** Poe is talking (an event the client will see, or one held back for the footer): the next ping waits. */
  protected touchPings(): void {
    this.pings.touch();
  }

  protected stopPings(): void {
    this.pings.stop();
  }

  protected sendJsonText(status: number, text: string, extra: Record<string, string> = {}): void {
    this.answered = true;
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...this.prompt?.headers, ...extra });
    this.res.end(text);
  }

  private fail(err: unknown): void {
    if (this.signal.aborted) {
      this.outcome.status = 'aborted';
      this.finish();
      return;
    }
    const pe = noteFailure(this.outcome, err);
    if (!(err instanceof ProxyError)) this.svc.logger.error(`${this.endpoint} handler crashed: ${(err as Error)?.stack ?? err}`);
    if (this.res.headersSent) {
      if (!this.res.writableEnded) this.res.end(this.errorEvent(pe));
    } else if (!this.res.destroyed) {
      this.sendJsonText(pe.status, this.errorJson(pe), pe.headers);
    }
    this.finish();
  }

  /** Writes the ledger entry once, whatever path the exchange took. */
  protected finish(): void {
    if (this.finished) return;
    this.finished = true;
    const facts = {
      startedAt: this.started,
      requestId: this.req.headers['x-request-id'],
      model: this.plan?.model.id ?? this.requestedModel,
      endpoint: this.endpoint,
      stream: this.plan?.stream ?? false,
      client: this.client,
      balanceAfter: this.svc.usage.cachedBalance()?.value ?? null,
    };
    this.svc.record(ledgerEntry(facts, this.outcome), this.outcome.sentToPoe);
  }
}
