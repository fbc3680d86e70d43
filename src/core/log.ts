/**
 * The logging surface the core writes to. The VS Code adapter maps it onto a LogOutputChannel,
 * the CLI onto stderr. Secrets never reach it: `redact` is applied by every sink.
 */
export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
};

const secrets = new Set<string>();

/** Registers a value (Poe key, access key) that must never appear in a log line. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 8) secrets.add(value);
}

export function forgetSecret(value: string | undefined): void {
  if (value) secrets.delete(value);
}

/**
 * Replaces the registered secrets (not the bearer pattern: relayed answers may discuss tokens) in text
 * Poe sent that goes to a client or the ledger. The common case, no secret in it, returns the input
 * itself after one native search per secret, so a relayed stream pays next to nothing.
 */
export function scrubSecrets(data: string): string;
export function scrubSecrets(data: Buffer): Buffer;
export function scrubSecrets(data: string | Buffer): string | Buffer {
  for (const s of secrets) {
    if (!data.includes(s)) continue;
    const text = typeof data === 'string' ? data : data.toString('utf8');
    const out = [...secrets].reduce((t, k) => t.split(k).join('[redacted]'), text);
    return typeof data === 'string' ? out : Buffer.from(out, 'utf8');
  }
  return data;
}

const bearerPattern = /(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi;

/** Removes registered secrets and anything that looks like a bearer token. */
export function redact(message: string): string {
  let out = message;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join('[redacted]');
  }
  return out.replace(bearerPattern, '$1[redacted]');
}

/** Longest log line: a client-supplied string (a 6 MB model name) must not become a 6 MB log line. */
export const MAX_LOG_LINE_CHARS = 8 * 1024;

/**
 * `value` cut to at most `max` characters, saying how much was cut. Every client-supplied string is
 * capped like this before it is logged, stored in the ledger or quoted back in an error.
 */
export function capText(value: string, max: number): string {
  if (value.length <= max) return value;
  const head = value.slice(0, max);
  // Never leave half a surrogate pair behind.
  const safe = /[\ud800-\udbff]$/.test(head) ? head.slice(0, -1) : head;
  return `${safe}… (${(value.length - safe.length).toLocaleString('en-US')} more characters)`;
}

/** What every log sink writes for a message: secrets redacted, length capped. */
export function logText(message: string): string {
  return capText(redact(message), MAX_LOG_LINE_CHARS);
}

export function consoleLogger(level: 'debug' | 'info' | 'warn' = 'info', write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  const order = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 } as const;
  const min = order[level];
  const emit = (lvl: keyof typeof order, message: string): void => {
    if (order[lvl] < min) return;
    write(`${new Date().toISOString()} [${lvl}] ${logText(message)}`);
  };
  return {
    trace: (m) => emit('trace', m),
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}
