/**
 * Request gatekeeping for a proxy that spends the user's points: DNS-rebinding Host checks,
 * cross-site browser requests, content type, and the optional local access key.
 */
import { timingSafeEqual, createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ProxyError } from './errors';

export interface GateConfig {
  port: number;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
  accessKey?: string;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

/** Host header values accepted: loopback names with the port, plus configured extras. */
export function allowedHostValues(cfg: GateConfig): Set<string> {
  const set = new Set<string>();
  for (const name of LOOPBACK_NAMES) set.add(`${name}:${cfg.port}`);
  for (const extra of cfg.allowedHosts) set.add(extra.toLowerCase());
  return set;
}

/** Throws a 403 for a Host that is not ours (a DNS-rebinding page would send its own domain). */
export function checkHost(req: IncomingMessage, allowed: Set<string>): void {
  // Node keeps only the first of several Host lines; a request with two is ambiguous, so refuse it (RFC 9112 §3.2).
  let hostLines = 0;
  for (let i = 0; i < (req.rawHeaders?.length ?? 0); i += 2) if (req.rawHeaders[i].toLowerCase() === 'host') hostLines++;
  if (hostLines > 1) {
    throw new ProxyError(400, 'The request has more than one Host header. Send exactly one.', 'invalid_request_error', 'duplicate_host');
  }
  const host = (req.headers.host ?? '').toLowerCase();
  if (!host || !allowed.has(host)) {
    throw new ProxyError(
      403,
      `Host "${host || '(empty)'}" is not allowed. The proxy answers only to ${[...allowed].join(', ')}; if you reach it under another name on purpose, add that name with its port to ALLOWED_HOSTS (headless proxy).`,
      'permission_error',
      'host_not_allowed',
    );
  }
}

/** Throws a 403 for requests a web page made on its own (cross-site), unless the Origin is allowed. */
export function checkOrigin(req: IncomingMessage, cfg: GateConfig): string | undefined {
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  if (origin !== undefined) {
    if (cfg.allowedOrigins.includes(origin) || cfg.allowedOrigins.includes('*')) return origin;
    throw new ProxyError(
      403,
      `Requests from web pages (Origin ${origin}) are refused so a website cannot spend your Poe points. If that page is yours, add its origin to ALLOWED_ORIGINS (headless proxy).`,
      'permission_error',
      'origin_not_allowed',
    );
  }
  if (site === 'cross-site' || site === 'same-site') {
    throw new ProxyError(403, 'Cross-site browser requests are refused so a website cannot spend your Poe points.', 'permission_error', 'cross_site_request');
  }
  return undefined;
}

/** POST bodies must be JSON: a `text/plain` form post is how a page would get past the CORS preflight. */
export function checkJsonContentType(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]*\+json$/.test(type)) {
    throw new ProxyError(
      415,
      `Content-Type must be application/json (got "${type || 'none'}"). Send the request body as JSON with a Content-Type: application/json header.`,
      'invalid_request_error',
      'unsupported_media_type',
    );
  }
}

/** The key a client presented: `Authorization: Bearer …` or `x-api-key`. */
export function presentedKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim();
  const x = req.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison (hashing first makes lengths equal and hides the key's length). */
export function keysMatch(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export function checkAccessKey(req: IncomingMessage, cfg: GateConfig): void {
  if (!cfg.accessKey) return;
  const key = presentedKey(req);
  if (!key || !keysMatch(key, cfg.accessKey)) {
    throw new ProxyError(
      401,
      `${key ? 'Wrong' : 'Missing'} local access key. This proxy requires its access key as "Authorization: Bearer <key>" or "x-api-key: <key>" (VS Code: "Poe: Copy Access Key"; headless: PROXY_API_KEY).`,
      'authentication_error',
      'invalid_access_key',
    );
  }
}

/** A fresh access key for users who turn the feature on. */
export function generateAccessKey(): string {
  return `pp-${randomBytes(24).toString('base64url')}`;
}
