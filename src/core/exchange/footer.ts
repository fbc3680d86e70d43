/**
 * The usage footer appended to answers, and its removal from history that clients send back.
 * The footer is recognisable by FOOTER_MARK so it never piles up across turns.
 */
import type { ChatMessage, ContentPart } from './openaiTypes';
import type { Modality } from '../store/registry';

export const FOOTER_MARK = '⟦poe-proxy⟧';
const FOOTER_SEPARATOR = '\n\n---\n';

export interface FooterInfo {
  promptTokens: number;
  completionTokens: number;
  points: number | null;
  pointsEstimated: boolean;
  balance: number | null;
  clippedMessages?: number;
  truncatedMessages?: number;
  warnings?: string[];
}

/** Request header that turns the footer off for one request (`off`, `false`, `0` or `no`). */
export const FOOTER_HEADER = 'x-poe-proxy-footer';

/** What decides, before the answer, whether it may get a footer. */
export interface FooterRequest {
  /** The `footer` setting (FOOTER / poeProxy.footer). */
  enabled: boolean;
  endpoint: 'chat' | 'messages' | 'responses';
  /** The client's request body (only `n`, `response_format` and `tools` are read). */
  body: { n?: unknown; response_format?: unknown; tools?: unknown } | undefined;
  headers: Record<string, string | string[] | undefined>;
  modality: Modality;
  /** Answered in process (Copilot Chat): a request that offers tools never gets a footer. */
  inProcess?: boolean;
}

/** What the answer turned out to be. */
export interface FooterAnswer {
  /** The answer carries tool calls (a tool-call turn). */
  toolCalls: boolean;
}

/**
 * The one place that decides whether an answer gets the footer. The footer is prose for a person
 * reading the answer, so it never goes where a program parses the content: tool-call turns, JSON mode
 * (`response_format` json_object / json_schema), several choices (`n > 1`), media answers, the
 * Anthropic and Responses passthroughs (their bytes are Poe's), in-process requests that offer tools,
 * and requests that say `x-poe-proxy-footer: off`. Without `answer` it says whether the answer MAY get
 * one (false means it certainly will not, so nothing needs to wait for the points).
 */
export function footerApplies(request: FooterRequest, answer?: FooterAnswer): boolean {
  if (!request.enabled || request.endpoint !== 'chat' || request.modality !== 'text') return false;
  if (footerOffByHeader(request.headers[FOOTER_HEADER])) return false;
  const body = request.body ?? {};
  if (typeof body.n === 'number' && body.n > 1) return false;
  if (isJsonMode(body.response_format)) return false;
  if (request.inProcess && Array.isArray(body.tools) && body.tools.length > 0) return false;
  return !answer?.toolCalls;
}

function footerOffByHeader(value: string | string[] | undefined): boolean {
  const v = (Array.isArray(value) ? value[0] : value)?.trim().toLowerCase();
  return v === 'off' || v === 'false' || v === '0' || v === 'no';
}

/** `response_format` asking for JSON (`json_object`, `json_schema`): the whole content is parsed as JSON. */
export function isJsonMode(responseFormat: unknown): boolean {
  if (!responseFormat || typeof responseFormat !== 'object') return false;
  const type = (responseFormat as { type?: unknown }).type;
  return type === 'json_object' || type === 'json_schema';
}

/** Compact numbers for a one-line footer: 1234 → 1,234; 1_234_567 → 1.23M. */
export function formatPoints(n: number): string {
  if (Math.abs(n) >= 1_000_000) return `${(n / 1_000_000).toFixed(2).replace(/\.?0+$/, '')}M`;
  return Math.round(n).toLocaleString('en-US');
}

export function renderFooter(info: FooterInfo): string {
  const total = info.promptTokens + info.completionTokens;
  const parts = [
    `${FOOTER_MARK} Tokens: ${total.toLocaleString('en-US')} (in ${info.promptTokens.toLocaleString('en-US')} / out ${info.completionTokens.toLocaleString('en-US')})`,
    info.points === null ? 'Points: n/a' : `Points: ${formatPoints(info.points)}${info.pointsEstimated ? ' (est.)' : ''}`,
    // Exact, so a user sees it move by each answer's cost (the status bar stays compact).
    info.balance === null ? 'Balance: n/a' : `Balance: ${Math.round(info.balance).toLocaleString('en-US')}`,
  ];
  if (info.clippedMessages || info.truncatedMessages) {
    const what = [
      info.clippedMessages ? `${info.clippedMessages} older message${info.clippedMessages === 1 ? '' : 's'} dropped` : '',
      info.truncatedMessages ? `${info.truncatedMessages} shortened` : '',
    ].filter(Boolean);
    parts.push(`Context clipped: ${what.join(', ')}`);
  }
  let text = FOOTER_SEPARATOR + parts.join(' · ');
  for (const w of info.warnings ?? []) text += `\n⚠ ${w}`;
  return text;
}

/** Removes a footer (and anything after it) from an assistant message's text. */
export function stripFooterText(text: string): string {
  const at = text.lastIndexOf(FOOTER_MARK);
  if (at === -1) return text;
  const sep = text.lastIndexOf('---', at);
  const cut = sep !== -1 && at - sep <= 8 ? sep : at;
  return text.slice(0, cut).replace(/\s+$/, '');
}

/** Returns messages with footers removed from assistant turns; the input is not mutated. */
export function stripFooters(messages: ChatMessage[]): ChatMessage[] {
  let changed = false;
  const out = messages.map((m) => {
    if (m.role !== 'assistant' || m.content === undefined || m.content === null) return m;
    if (typeof m.content === 'string') {
      if (!m.content.includes(FOOTER_MARK)) return m;
      changed = true;
      return { ...m, content: stripFooterText(m.content) };
    }
    if (
      Array.isArray(m.content) &&
      m.content.some((p) => typeof (p as { text?: unknown }).text === 'string' && (p as { text: string }).text.includes(FOOTER_MARK))
    ) {
      changed = true;
      const parts = m.content.map((p) =>
        typeof (p as { text?: unknown }).text === 'string' ? ({ ...p, text: stripFooterText((p as { text: string }).text) } as ContentPart) : p,
      );
      return { ...m, content: parts };
    }
    return m;
  });
  return changed ? out : messages;
}
