/**
 * Typed proxy configuration with every default in one place.
 * The VS Code adapter and the headless CLI both build a `ProxyConfig` from their own sources
 * (settings / environment) by overriding `DEFAULT_CONFIG`.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export interface RateLimitConfig {
  /** Sustained requests per minute per client (0 = unlimited). */
  requestsPerMinute: number;
  /** Requests a client may send at once before the sustained rate applies. */
  burst: number;
  /** Requests in flight at once across all clients (0 = unlimited). */
  maxConcurrent: number;
}

export interface ProxyConfig {
  /** Interface to bind; loopback by default. */
  host: string;
  port: number;
  /** Poe's API root, without `/v1`. Chat is `{base}/v1/chat/completions`, usage `{base}/usage/…`. */
  poeBaseUrl: string;
  /** Path of the models registry; undefined = the bundled models.yaml. */
  modelsFile?: string;
  /** Below this balance the proxy answers with a "paused" message and does not call Poe (0 = off). */
  pointsCutoff: number;
  /** A message costing more than this gets a warning with cheaper models (0 = off). */
  pointsPerMessageWarn: number;
  /** Refuse a request whose pre-flight estimate exceeds this many points (0 = off). */
  maxPointsPerMessage: number;
  /** Answer requests without a `stream` field as a stream (the seed's behaviour for text models). */
  streamByDefault: boolean;
  /** Append the usage/points footer to answers. */
  footer: boolean;
  /** Global context cap in tokens (0 = only models.yaml's `defaults.text_max_tokens` and per-model caps). */
  contextLimit: number;
  /** Tokens kept free for the answer when the request does not say `max_tokens`. */
  outputReserve: number;
  rateLimit: RateLimitConfig;
  /**
   * How long an answer that shows a footer may wait for Poe's points_history to list it before the footer
   * shows the estimate ("est."). Answers without a footer never wait; the reconciler books the actual later.
   */
  pointsWaitMs: number;
  /** How long a fetched balance is trusted before it is fetched again (in the background: requests never wait for it). */
  balanceTtlMs: number;
  /** A balance fetch is abandoned after this long (the last known balance stays in force). */
  balanceTimeoutMs: number;
  /** Points allowed per local calendar day; at 100% requests are paused (0 = off). */
  pointsBudgetDaily: number;
  /** Points allowed per local calendar month (0 = off). */
  pointsBudgetMonthly: number;
  /** Estimated ledger entries younger than this keep being matched against points_history. */
  reconcileMaxAgeMs: number;
  /** Retries for 429/5xx/connection errors before the first byte. */
  upstreamRetries: number;
  /** Base of the exponential backoff between those retries. */
  retryBaseDelayMs: number;
  /** Upper bound on a single backoff wait, also when Poe's Retry-After asks for more. */
  retryMaxDelayMs: number;
  /** Time allowed for Poe to send response headers. */
  upstreamHeadersTimeoutMs: number;
  /** Time allowed between two bytes of Poe's response body. */
  upstreamIdleTimeoutMs: number;
  /** SSE comment sent to the client while Poe is silent, so clients do not time out. */
  keepAliveIntervalMs: number;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Time allowed for a client to send its whole request body. */
  bodyTimeoutMs: number;
  /** Time allowed for a client to send its request headers (slowloris). */
  headersTimeoutMs: number;
  /** Extra `Host` header values accepted besides loopback names with the port. */
  allowedHosts: string[];
  /** `Origin` values allowed to call the proxy (browser pages); none by default. */
  allowedOrigins: string[];
  /** Local access key clients must present (Bearer or x-api-key); undefined = none. */
  accessKey?: string;
  /** Where the cost ledger lives. */
  dataDir: string;
  /** Months of ledger kept before the current one (older months are deleted); 0 = forever. */
  ledgerRetentionMonths: number;
  /** In-flight streams get this long to finish when the proxy stops. */
  shutdownGraceMs: number;
}

export const DEFAULT_PORT = 9876;
export const DEFAULT_BASE_URL = 'https://api.poe.com';

export function defaultDataDir(): string {
  const xdg = process.env.XDG_DATA_HOME;
  return path.join(xdg && xdg.length > 0 ? xdg : path.join(os.homedir(), '.local', 'share'), 'poe-proxy');
}

export const DEFAULT_CONFIG: Readonly<ProxyConfig> = Object.freeze({
  host: '127.0.0.1',
  port: DEFAULT_PORT,
  poeBaseUrl: DEFAULT_BASE_URL,
  modelsFile: undefined,
  pointsCutoff: 100_000,
  pointsPerMessageWarn: 5_000,
  maxPointsPerMessage: 0,
  streamByDefault: false,
  footer: true,
  contextLimit: 0,
  outputReserve: 4_096,
  rateLimit: Object.freeze({ requestsPerMinute: 120, burst: 20, maxConcurrent: 64 }),
  pointsWaitMs: 400,
  balanceTtlMs: 60_000,
  balanceTimeoutMs: 3_000,
  pointsBudgetDaily: 0,
  pointsBudgetMonthly: 0,
  reconcileMaxAgeMs: 6 * 3_600_000,
  upstreamRetries: 2,
  retryBaseDelayMs: 500,
  retryMaxDelayMs: 10_000,
  upstreamHeadersTimeoutMs: 600_000,
  upstreamIdleTimeoutMs: 300_000,
  keepAliveIntervalMs: 15_000,
  maxBodyBytes: 32 * 1024 * 1024,
  bodyTimeoutMs: 30_000,
  headersTimeoutMs: 15_000,
  allowedHosts: [],
  allowedOrigins: [],
  accessKey: undefined,
  dataDir: defaultDataDir(),
  ledgerRetentionMonths: 13,
  shutdownGraceMs: 5_000,
}) as ProxyConfig;

export type ConfigOverrides = Partial<Omit<ProxyConfig, 'rateLimit'>> & { rateLimit?: Partial<RateLimitConfig> };

/** Defaults overlaid with the given values; `undefined` values keep the default. */
export function makeConfig(overrides: ConfigOverrides = {}): ProxyConfig {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as ConfigOverrides;
  const rateLimit = Object.fromEntries(Object.entries(overrides.rateLimit ?? {}).filter(([, v]) => v !== undefined)) as Partial<RateLimitConfig>;
  return {
    ...DEFAULT_CONFIG,
    ...defined,
    rateLimit: { ...DEFAULT_CONFIG.rateLimit, ...rateLimit },
    allowedHosts: [...(defined.allowedHosts ?? DEFAULT_CONFIG.allowedHosts)],
    allowedOrigins: [...(defined.allowedOrigins ?? DEFAULT_CONFIG.allowedOrigins)],
  };
}

/** True for addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Normalises a base URL: no trailing slash, no trailing `/v1` (users paste either form). */
export function normaliseBaseUrl(raw: string): string {
  let url = raw.trim().replace(/\/+$/, '');
  if (/\/v1$/i.test(url)) url = url.slice(0, -3);
  const parsed = new URL(url); // throws a clear TypeError for garbage
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new Error(`Poe base URL must be http(s), got ${parsed.protocol}`);
  }
  return url;
}

/** The Poe key from the environment (POE_API_KEY, else the seed's POE_TOKEN): the CLI's key, and VS Code's fallback. */
export function apiKeyFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const k = (env.POE_API_KEY ?? env.POE_TOKEN ?? '').trim();
  return k || undefined;
}
