/**
 * Errors in OpenAI's JSON shape: `{error:{message,type,param,code}}`.
 * Every error the proxy itself produces goes through `ProxyError` so the message always carries a hint.
 */
import { redact } from '../log';

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'api_error'
  | 'upstream_error'
  | 'timeout_error';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Seconds a client should wait after a 429 or 503 that did not say (the proxy already retried Poe). */
export const DEFAULT_RETRY_AFTER_SECONDS = 2;

/**
 * Whether retrying the same request can help: not for 4xx other than 408 (timeout), 409 and 429
 * (rate limit). Clients learn it from `x-should-retry`, the header the official OpenAI and Anthropic
 * SDKs (and Claude Code) read before their own status-based rule.
 */
export function retryCanHelp(status: number): boolean {
  return !(status >= 400 && status < 500) || status === 408 || status === 409 || status === 429;
}

/** An error response's headers: `x-should-retry: false` when retrying cannot help, `Retry-After` on every 429 and 503. */
export function retryHeaders(status: number, headers: Record<string, string> = {}): Record<string, string> {
  const out = { ...headers };
  if (!retryCanHelp(status)) out['x-should-retry'] = 'false';
  if ((status === 429 || status === 503) && !Object.keys(out).some((k) => k.toLowerCase() === 'retry-after'))
    out['retry-after'] = String(DEFAULT_RETRY_AFTER_SECONDS);
  return out;
}

export class ProxyError extends Error {
  /** Response headers: the extras given (e.g. Retry-After) plus the retry advice (`retryHeaders`). */
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    message: string,
    readonly type: OpenAIErrorType | string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    /** Extra response headers such as Retry-After. */
    headers: Record<string, string> = {},
  ) {
    // Upstream messages are quoted into errors, and Poe may quote the key back: never echo a secret.
    super(redact(message));
    this.name = 'ProxyError';
    this.headers = retryHeaders(status, headers);
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code = 'invalid_request'): ProxyError {
  return new ProxyError(400, message, 'invalid_request_error', code, param);
}

export function errorBody(message: string, type: string, code: string | null = null, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

/** Hints appended to upstream errors so the user knows what to do next. */
export function upstreamHint(status: number): string {
  switch (status) {
    case 401:
      return 'Poe rejected the API key: check it at https://poe.com/api_key and set it again (VS Code: "Poe: Set API Key"; headless: POE_API_KEY).';
    case 402:
      return 'Your Poe point balance is too low for this request: add points at https://poe.com or pick a cheaper model.';
    case 403:
      return 'Poe refused access to this model with this key; private bots are not available through the API.';
    case 404:
      return 'Poe does not know this model; check the poe_name in models.yaml against GET /v1/models.';
    case 408:
    case 504:
      return 'Poe took too long to answer; try again or pick a faster model.';
    case 413:
      return 'The request is too large for Poe; lower the context limit or start a new conversation.';
    case 429:
      return "Poe's rate limit (500 requests per minute per key) was hit; wait a moment and retry.";
    default:
      return status >= 500 ? 'Poe had a server error; try again in a moment.' : 'Check the request parameters.';
  }
}

export function upstreamErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'insufficient_quota';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'upstream_error';
  return 'invalid_request_error';
}

/** Pulls the human message out of whatever an upstream error body looks like. */
export function extractUpstreamMessage(raw: string): string {
  const text = raw.trim();
  if (!text) return '';
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object') {
      const obj = parsed as Record<string, unknown>;
      const err = obj.error;
      if (typeof err === 'string') return err;
      if (err && typeof err === 'object' && typeof (err as Record<string, unknown>).message === 'string') {
        return (err as Record<string, string>).message;
      }
      if (typeof obj.message === 'string') return obj.message;
      if (typeof obj.detail === 'string') return obj.detail;
    }
  } catch {
    /* not JSON: fall through to the raw text */
  }
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
