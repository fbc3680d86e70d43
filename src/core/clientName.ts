/**
 * Which tool sent a request, for the ledger's `client` (the cost history's per-tool breakdown, the CSV and
 * the log line): a known coding tool or SDK recognised by its User-Agent or its own headers, else the raw
 * User-Agent, cut short and stripped of control characters.
 */

type Headers = Record<string, string | string[] | undefined>;

export const MAX_CLIENT_CHARS = 60;

const header = (h: Headers, name: string): string => {
  const v = h[name];
  return (Array.isArray(v) ? v.join(',') : (v ?? '')).trim();
};

/** First match wins: tools before the SDKs they are built on. */
const KNOWN: ReadonlyArray<{ name: string; test: (ua: string, h: Headers) => boolean }> = [
  { name: 'Claude Code', test: (ua, h) => /^claude-cli\//i.test(ua) || /claude-code/i.test(ua) || header(h, 'x-app') === 'cli' },
  { name: 'Codex', test: (ua, h) => /^codex/i.test(ua) || /^codex/i.test(header(h, 'originator')) },
  { name: 'opencode', test: (ua) => /\bopencode\b/i.test(ua) },
  { name: 'Qwen Code', test: (ua) => /qwen-?code/i.test(ua) },
  { name: 'Kilo Code', test: (ua, h) => /kilo/i.test(header(h, 'x-title')) || /kilocode/i.test(header(h, 'http-referer')) || /kilo-?code/i.test(ua) },
  { name: 'Roo Code', test: (ua, h) => /\broo\b/i.test(header(h, 'x-title')) || /roo(vetgit|code)/i.test(header(h, 'http-referer')) || /roo-?code/i.test(ua) },
  { name: 'Cline', test: (ua, h) => /\bcline\b/i.test(header(h, 'x-title')) || /cline\.bot/i.test(header(h, 'http-referer')) || /\bcline\b/i.test(ua) },
  {
    name: 'Continue',
    test: (ua, h) => /\bcontinue\b/i.test(header(h, 'x-title')) || /continue\.dev/i.test(header(h, 'http-referer')) || /\bcontinue\b/i.test(ua),
  },
  { name: 'Aider', test: (ua, h) => /\baider\b/i.test(header(h, 'x-title')) || /aider\.chat/i.test(header(h, 'http-referer')) || /\baider\b/i.test(ua) },
  { name: 'LangChain', test: (ua) => /langchain/i.test(ua) },
  { name: 'AI SDK', test: (ua) => /\bai-sdk\//i.test(ua) || /vercel/i.test(ua) },
  { name: 'OpenAI SDK (JS)', test: (ua) => /^openai\/js/i.test(ua) },
  { name: 'OpenAI SDK (Python)', test: (ua) => /^openai\/python/i.test(ua) },
  { name: 'Anthropic SDK', test: (ua) => /^anthropic\//i.test(ua) },
];

/** The tool's name (see KNOWN), else the raw User-Agent capped at MAX_CLIENT_CHARS, else 'unknown'. */
export function clientName(headers: Headers): string {
  const ua = header(headers, 'user-agent');
  for (const k of KNOWN) if (k.test(ua, headers)) return k.name;
  const raw = ua
    // eslint-disable-next-line no-control-regex -- control characters are what this strips
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (!raw) return 'unknown';
  return raw.length > MAX_CLIENT_CHARS ? `${raw.slice(0, MAX_CLIENT_CHARS - 1)}…` : raw;
}
