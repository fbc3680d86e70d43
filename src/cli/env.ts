/**
 * Headless configuration: environment variables (the seed's names plus ours) and a `.env` file.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { apiKeyFromEnv, makeConfig, normaliseBaseUrl, type ProxyConfig } from '../core/store/config';

export class EnvConfigError extends Error {}

/** Every variable the headless proxy reads, with what it sets (the README table is generated from the same list). */
export const ENV_VARS: ReadonlyArray<{ name: string; description: string }> = [
  { name: 'POE_API_KEY', description: 'Your Poe API key (or POE_TOKEN). Required to call Poe.' },
  { name: 'POE_BASE_URL', description: 'Poe API root. Default https://api.poe.com' },
  { name: 'HOST', description: 'Interface to bind. Default 127.0.0.1 (anything else requires PROXY_API_KEY).' },
  { name: 'PORT', description: 'Port. Default 9876' },
  { name: 'MODELS_FILE', description: 'Path of models.yaml. Default: the bundled one' },
  { name: 'POINTS_CUTOFF', description: 'Pause (no Poe call) while the balance is below this. Default 100000; 0 = off' },
  { name: 'POINTS_PER_MESSAGE_WARN', description: 'Warn in the footer when one message costs more. Default 5000; 0 = off' },
  { name: 'MAX_POINTS_PER_MESSAGE', description: 'Refuse requests whose pre-flight estimate is higher. Default 0 = off' },
  { name: 'STREAM_BY_DEFAULT', description: 'Stream text answers when the request has no "stream" field. Default false' },
  { name: 'FOOTER', description: 'Append the usage/points footer. Default true' },
  { name: 'CONTEXT_LIMIT', description: 'Global context cap in tokens. Default 0 = models.yaml caps only' },
  { name: 'OUTPUT_RESERVE', description: 'Tokens kept free for the answer when max_tokens is absent. Default 4096' },
  { name: 'RATE_LIMIT_RPM', description: 'Requests per minute per client. Default 120; 0 = off' },
  { name: 'RATE_LIMIT_BURST', description: 'Burst size per client. Default 20' },
  { name: 'MAX_CONCURRENT', description: 'Requests in flight at once. Default 64; 0 = off' },
  {
    name: 'POINTS_WAIT_MS',
    description: 'Longest wait for the actual points of an answer that shows a footer, then "est.". Default 400; answers without a footer never wait',
  },
  { name: 'POINTS_BUDGET_DAILY', description: 'Points allowed per local day; pause at 100%, warn at 80%. Default 0 = off' },
  { name: 'POINTS_BUDGET_MONTHLY', description: 'Points allowed per local calendar month; pause at 100%, warn at 80%. Default 0 = off' },
  { name: 'PROXY_API_KEY', description: 'Local access key clients must send (Bearer or x-api-key). Default none' },
  { name: 'ALLOWED_HOSTS', description: 'Extra Host header values to accept, comma-separated' },
  { name: 'ALLOWED_ORIGINS', description: 'Browser origins allowed to call the proxy, comma-separated. Default none' },
  { name: 'MAX_BODY_MB', description: 'Largest request body in MiB. Default 32' },
  { name: 'DATA_DIR', description: 'Where the cost ledger is written. Default $XDG_DATA_HOME/poe-proxy or ~/.local/share/poe-proxy' },
  { name: 'LEDGER_RETENTION_MONTHS', description: 'Months of cost ledger kept before the current one; older months are deleted. Default 13; 0 = forever' },
  { name: 'LOG_LEVEL', description: 'debug, info or warn. Default info' },
];

function num(env: NodeJS.ProcessEnv, name: string, opts: { min?: number; int?: boolean } = {}): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = Number(raw.replace(/_/g, ''));
  if (!Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min)) {
    throw new EnvConfigError(`${name}="${raw}" is not a valid ${opts.int ? 'whole ' : ''}number${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}.`);
  }
  return v;
}

function bool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new EnvConfigError(`${name}="${env[name]}" must be true or false.`);
}

function list(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function configFromEnv(env: NodeJS.ProcessEnv): ProxyConfig {
  let base: string | undefined;
  if (env.POE_BASE_URL?.trim()) {
    try {
      base = normaliseBaseUrl(env.POE_BASE_URL);
    } catch (err) {
      throw new EnvConfigError(`POE_BASE_URL="${env.POE_BASE_URL}" is not a usable URL: ${(err as Error).message}`);
    }
  }
  const maxBodyMb = num(env, 'MAX_BODY_MB', { min: 1 });
  return makeConfig({
    host: env.HOST?.trim() || undefined,
    port: num(env, 'PORT', { min: 0, int: true }),
    poeBaseUrl: base,
    modelsFile: env.MODELS_FILE?.trim() || undefined,
    pointsCutoff: num(env, 'POINTS_CUTOFF', { min: 0 }),
    pointsPerMessageWarn: num(env, 'POINTS_PER_MESSAGE_WARN', { min: 0 }),
    maxPointsPerMessage: num(env, 'MAX_POINTS_PER_MESSAGE', { min: 0 }),
    streamByDefault: bool(env, 'STREAM_BY_DEFAULT'),
    footer: bool(env, 'FOOTER'),
    contextLimit: num(env, 'CONTEXT_LIMIT', { min: 0, int: true }),
    outputReserve: num(env, 'OUTPUT_RESERVE', { min: 0, int: true }),
    pointsWaitMs: num(env, 'POINTS_WAIT_MS', { min: 0, int: true }),
    pointsBudgetDaily: num(env, 'POINTS_BUDGET_DAILY', { min: 0 }),
    pointsBudgetMonthly: num(env, 'POINTS_BUDGET_MONTHLY', { min: 0 }),
    rateLimit: {
      requestsPerMinute: num(env, 'RATE_LIMIT_RPM', { min: 0 }),
      burst: num(env, 'RATE_LIMIT_BURST', { min: 1, int: true }),
      maxConcurrent: num(env, 'MAX_CONCURRENT', { min: 0, int: true }),
    },
    accessKey: env.PROXY_API_KEY?.trim() || undefined,
    allowedHosts: list(env, 'ALLOWED_HOSTS'),
    allowedOrigins: list(env, 'ALLOWED_ORIGINS'),
    maxBodyBytes: maxBodyMb === undefined ? undefined : Math.round(maxBodyMb * 1024 * 1024),
    dataDir: env.DATA_DIR?.trim() || undefined,
    ledgerRetentionMonths: num(env, 'LEDGER_RETENTION_MONTHS', { min: 0, int: true }),
  });
}

/** Parses a .env file: KEY=VALUE lines, `export` prefixes, quotes and comments. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.lastIndexOf(quote) > 0) {
      value = value.slice(1, value.lastIndexOf(quote));
      if (quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"');
    } else {
      value = value.replace(/\s+#.*$/, '').trim();
    }
    out[m[1]] = value;
  }
  return out;
}

/**
 * Settings that decide where the Poe key goes or who may call the proxy. A `.env` is often part of a
 * cloned repository: it may set these only when the Poe key itself comes from that same file (then the
 * file is the user's own). With the key from the environment, a `.env` setting POE_BASE_URL would send
 * the user's key to whatever server the repository names. MODELS_FILE belongs here too: its aliases
 * decide which bot a request spends the key's points on, and its prices what the cost cap allows.
 */
export const KEY_BOUND_VARS: readonly string[] = [
  'POE_API_KEY',
  'POE_TOKEN',
  'POE_BASE_URL',
  'HOST',
  'ALLOWED_HOSTS',
  'ALLOWED_ORIGINS',
  'PROXY_API_KEY',
  'MODELS_FILE',
];

export interface DotEnvResult {
  file: string;
  /** The Poe key the proxy uses comes from this file (so it may set KEY_BOUND_VARS too). */
  keyFromFile: boolean;
  /** KEY_BOUND_VARS the file set but that were not taken (the key came from elsewhere). */
  ignored: string[];
  /** The file set POE_BASE_URL (taken): the key goes to that server. */
  upstream?: string;
}

/**
 * Loads `.env` from a directory into env without overriding variables already set, and without the
 * KEY_BOUND_VARS unless the Poe key comes from the file. Returns what it did (undefined: no file).
 */
export function loadDotEnv(dir: string, env: NodeJS.ProcessEnv): DotEnvResult | undefined {
  const file = path.join(dir, '.env');
  if (!existsSync(file)) return undefined;
  const values = parseDotEnv(readFileSync(file, 'utf8'));
  const keyFromFile = apiKeyFromEnv(env) === undefined && apiKeyFromEnv(values) !== undefined;
  const result: DotEnvResult = { file, keyFromFile, ignored: [] };
  for (const [k, v] of Object.entries(values)) {
    if (env[k] !== undefined) continue;
    if (!keyFromFile && KEY_BOUND_VARS.includes(k)) {
      result.ignored.push(k);
      continue;
    }
    env[k] = v;
    if (k === 'POE_BASE_URL' && v.trim()) result.upstream = v.trim();
  }
  return result;
}

/** The log lines that say what a `.env` was not allowed to do, or that it changed the upstream. */
export function dotEnvWarnings(r: DotEnvResult | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  if (r.ignored.length) {
    out.push(
      `${r.file}: ignored ${r.ignored.join(', ')}: the Poe key does not come from this file, so it may not change where the key goes or who may call the proxy. Set them in your environment if you mean them.`,
    );
  }
  if (r.upstream) out.push(`${r.file} sets POE_BASE_URL=${r.upstream}: your Poe key is sent to that server, not to Poe's own API.`);
  return out;
}

/** The models.yaml shipped next to the bundle (dist/../models.yaml) or the repo root under tests. */
export function bundledModelsFile(fromDir: string): string {
  let dir = fromDir;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'models.yaml');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return path.join(fromDir, '..', 'models.yaml');
}
