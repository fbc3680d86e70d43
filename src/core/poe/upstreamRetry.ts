/**
 * Sending one request to Poe with bounded retries for 429, 5xx and connection errors, before the
 * first byte reached the client. Shared by every endpoint (chat, Anthropic Messages, Responses);
 * endpoint-specific retries (chat's 400 ladder) plug in through `retryNow`.
 */
import type { IncomingMessage } from 'node:http';
import type { ProxyConfig } from '../store/config';
import { extractUpstreamMessage, ProxyError, upstreamErrorType, upstreamHint } from '../http/errors';
import type { Logger } from '../log';
import { parseRetryAfter, readBody, UpstreamConnectionError, type UpstreamClient } from './upstream';

export interface RetryingSend {
  upstream: UpstreamClient;
  config: ProxyConfig;
  logger: Logger;
  signal: AbortSignal;
  /** Upstream path, e.g. `/v1/messages`. */
  path: string;
  /** The body of the next attempt (it may change between attempts, e.g. chat's ladder). */
  body(): string;
  headers?: Record<string, string>;
  /** Names the request in log lines (the model id). */
  label: string;
  /** A non-2xx answer that is not transient: return true to send again at once (the ladder's next rung). */
  retryNow?(status: number, message: string): boolean;
  /** Called once per retry, whatever its reason (the ledger counts them). */
  onRetry(): void;
}

/** Resolves with Poe's 2xx response (body unread); throws an OpenAI-shaped ProxyError otherwise. */
export async function sendWithRetries(s: RetryingSend): Promise<IncomingMessage> {
  const { upstream, config, logger, signal, label } = s;
  let transient = 0;
  for (;;) {
    let res: IncomingMessage;
    try {
      res = await upstream.request({ method: 'POST', path: s.path, body: s.body(), headers: s.headers, signal });
    } catch (err) {
      if (signal.aborted) throw err;
      const e = err as UpstreamConnectionError;
      if (transient < config.upstreamRetries) {
        const wait = backoffDelay(config, transient++);
        logger.warn(`Poe connection failed (${e.message}); retry ${transient}/${config.upstreamRetries} in ${wait} ms`);
        s.onRetry();
        await abortableSleep(wait, signal);
        continue;
      }
      throw new ProxyError(
        502,
        `Could not get an answer from Poe: ${e.message}. Check your network and the Poe base URL (${upstream.baseUrl}), then retry.`,
        'upstream_error',
        e.code === 'ETIMEDOUT' ? 'upstream_timeout' : 'upstream_unreachable',
      );
    }
    const status = res.statusCode ?? 0;
    if (status === 200) return res;
    // A redirect is never followed (it would carry the key elsewhere), and a status Poe does not send
    // for a generation (3xx, 304, 1xx, 2xx other than 200, nonsense) is relayed as no client expects it.
    if (status < 400 || status > 599) {
      res.resume();
      const where =
        status >= 300 && status < 400 && res.headers.location ? ' (a redirect, not followed: the Poe key goes to the configured base URL only)' : '';
      throw new ProxyError(
        502,
        `Poe answered with an unexpected HTTP status ${status}${where}. Check the Poe base URL (${upstream.baseUrl}); if it is right, retry in a moment.`,
        'upstream_error',
        'upstream_unexpected_status',
      );
    }
    const message = extractUpstreamMessage(await readBody(res, 1024 * 1024).catch(() => '')) || `HTTP ${status}`;
    if (s.retryNow?.(status, message)) {
      s.onRetry();
      continue;
    }
    const retryAfter = parseRetryAfter(res.headers['retry-after']);
    if ((status === 429 || status >= 500) && transient < config.upstreamRetries) {
      const wait = retryAfter !== undefined ? Math.min(retryAfter * 1000, config.retryMaxDelayMs) : backoffDelay(config, transient);
      transient++;
      logger.warn(`Poe ${status} for ${label}: "${message}"; retry ${transient}/${config.upstreamRetries} in ${wait} ms`);
      s.onRetry();
      await abortableSleep(wait, signal);
      continue;
    }
    const headers: Record<string, string> = {};
    if (retryAfter !== undefined) headers['retry-after'] = String(Math.ceil(retryAfter));
    throw new ProxyError(
      status,
      `Poe answered ${status}: ${message} — ${upstreamHint(status)}`,
      upstreamErrorType(status),
      `upstream_${status}`,
      null,
      headers,
    );
  }
}

/** Exponential backoff with ±20 % jitter, capped by retryMaxDelayMs. */
export function backoffDelay(config: Pick<ProxyConfig, 'retryBaseDelayMs' | 'retryMaxDelayMs'>, attempt: number): number {
  const jitter = 0.8 + Math.random() * 0.4;
  return Math.min(config.retryMaxDelayMs, Math.round(config.retryBaseDelayMs * 2 ** attempt * jitter));
}

/** A wait that ends early (rejecting) when the client goes away: no retry for a request nobody reads. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new UpstreamConnectionError('request aborted by the client', 'ABORTED'));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
