/**
 * The usage footer appended to answers, and its removal from history that clients send back.
 * The footer is recognisable by FOOTER_MARK so it never piles up across turns.
 */
import type { ChatMessage, ContentPart } from './openaiTypes';

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
    if (Array.isArray(m.content) && m.content.some((p) => typeof (p as { text?: unknown }).text === 'string' && (p as { text: string }).text.includes(FOOTER_MARK))) {
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
