/**
 * Context clipping: fits a conversation into a model's token limit before it is sent to Poe.
 *
 * Counting: each message costs its content text + name + JSON of tool_calls (and tool_call_id /
 * function_call) + MESSAGE_OVERHEAD_TOKENS; a non-text content part (image…) costs NON_TEXT_PART_TOKENS;
 * the reply priming adds REPLY_PRIMING_TOKENS. When the UTF-8 byte length of all of that already fits (a
 * token is never shorter than a byte), nothing is counted at all.
 *
 * Clipping, when the count exceeds the limit:
 * 1. Every system/developer message and the latest user turn (the last user message and everything after
 *    it) are kept.
 * 2. Other messages are dropped oldest turn first. Within a turn, its assistant/tool steps go oldest first
 *    and its last step (usually the answer) goes together with its user message, so a partly dropped turn
 *    still starts with its question and ends with its answer. An assistant
 *    message with `tool_calls` and the `tool` messages answering it are one unit: dropped together or kept
 *    together (Poe rejects orphans either way).
 * 3. If the kept messages still do not fit, the middle of the largest kept text is replaced by a visible
 *    marker (`[… N tokens clipped by poe-proxy …]`), then the next largest, and so on. Only text is cut
 *    (string content or text parts; image parts and tool-call arguments stay intact).
 *
 * The input array and its messages are never mutated; changed messages are shallow copies.
 */
import type { ChatMessage, ContentPart } from './openaiTypes';
import { estimateTokens, utf8Length, type EncodingName, type TokenCounter } from '../tokens';

export const MESSAGE_OVERHEAD_TOKENS = 4;
export const NAME_TOKENS = 1;
export const REPLY_PRIMING_TOKENS = 3;
/** Flat cost of an image (OpenAI's 1024×1024 high-detail tile count) or any other non-text part. */
export const NON_TEXT_PART_TOKENS = 765;
/** A text is never cut below this many tokens (head + tail). */
export const MIN_KEPT_TOKENS = 64;

export interface ClipOptions {
  /** Input token budget. A limit ≤ 0 or not finite disables clipping. */
  limit: number;
  encoding: EncodingName;
}

export interface ClipResult {
  messages: ChatMessage[];
  clipped: boolean;
  droppedMessages: number;
  truncatedMessages: number;
  /** Estimated input tokens after clipping. */
  tokens: number;
  limit: number;
  /** True when `tokens` comes from the tokenizer; false when counting was skipped and it is an estimate. */
  counted: boolean;
}

export function clipMarker(tokens: number): string {
  return `\n\n[… ${tokens} tokens clipped by poe-proxy …]\n\n`;
}

/** A cuttable text: a message's string content (part -1) or one of its text parts. */
interface Unit {
  msg: number;
  part: number;
  text: string;
  tokens: number;
  cut: boolean;
}

interface Analysed {
  /** Texts that count but are never cut: name, tool_calls JSON, tool_call_id, function_call JSON. */
  fixed: string[];
  units: Unit[];
  /** Tokens that need no counting: overhead, name, non-text parts. */
  base: number;
}

function analyse(m: ChatMessage, index: number): Analysed {
  const fixed: string[] = [];
  const units: Unit[] = [];
  let base = MESSAGE_OVERHEAD_TOKENS;
  if (typeof m.name === 'string' && m.name) {
    fixed.push(m.name);
    base += NAME_TOKENS;
  }
  if (Array.isArray(m.tool_calls) && m.tool_calls.length > 0) fixed.push(JSON.stringify(m.tool_calls));
  if (typeof m.tool_call_id === 'string' && m.tool_call_id) fixed.push(m.tool_call_id);
  if (m.function_call !== undefined && m.function_call !== null) fixed.push(JSON.stringify(m.function_call));
  const content = m.content;
  if (typeof content === 'string') {
    if (content) units.push({ msg: index, part: -1, text: content, tokens: 0, cut: false });
  } else if (Array.isArray(content)) {
    content.forEach((part: ContentPart, k) => {
      if (part && part.type === 'text' && typeof (part as { text?: unknown }).text === 'string') {
        const text = (part as { text: string }).text;
        if (text) units.push({ msg: index, part: k, text, tokens: 0, cut: false });
      } else if (part) base += NON_TEXT_PART_TOKENS;
    });
  }
  return { fixed, units, base };
}

export async function clipMessages(messages: ChatMessage[], opts: ClipOptions, counter: TokenCounter): Promise<ClipResult> {
  const limit = opts.limit;
  const enc = opts.encoding;
  const infos = messages.map((m, i) => analyse(m ?? ({ role: 'user' } as ChatMessage), i));

  // 1. Upper bound by bytes: a token covers at least one byte.
  let bound = REPLY_PRIMING_TOKENS;
  for (const info of infos) {
    bound += info.base;
    for (const t of info.fixed) bound += utf8Length(t);
    for (const u of info.units) bound += utf8Length(u.text);
  }
  if (!(limit > 0) || bound <= limit) {
    let estimate = REPLY_PRIMING_TOKENS;
    for (const info of infos) {
      estimate += info.base;
      for (const t of info.fixed) estimate += estimateTokens(t);
      for (const u of info.units) estimate += estimateTokens(u.text);
    }
    return { messages: messages.slice(), clipped: false, droppedMessages: 0, truncatedMessages: 0, tokens: Math.min(estimate, bound), limit, counted: false };
  }

  // 2. Count everything in one call (cache hits for every message seen before).
  const texts: string[] = [];
  for (const info of infos) {
    for (const t of info.fixed) texts.push(t);
    for (const u of info.units) texts.push(u.text);
  }
  const counts = await counter.count(texts, enc);
  const msgTokens = new Array<number>(messages.length);
  let total = REPLY_PRIMING_TOKENS;
  let k = 0;
  infos.forEach((info, i) => {
    let t = info.base;
    for (let j = 0; j < info.fixed.length; j++) t += counts[k++] ?? 0;
    for (const u of info.units) {
      u.tokens = counts[k++] ?? 0;
      t += u.tokens;
    }
    msgTokens[i] = t;
    total += t;
  });
  if (total <= limit) {
    return { messages: messages.slice(), clipped: false, droppedMessages: 0, truncatedMessages: 0, tokens: total, limit, counted: true };
  }

  // 3. Drop oldest droppable units.
  const dropped = new Uint8Array(messages.length);
  let droppedMessages = 0;
  for (const group of dropOrder(messages)) {
    if (total <= limit) break;
    for (const i of group) {
      dropped[i] = 1;
      total -= msgTokens[i];
      droppedMessages++;
    }
  }

  // 4. Cut the middle of the largest kept texts.
  const truncated = new Set<number>();
  if (total > limit) {
    const units = infos.flatMap((info, i) => (dropped[i] ? [] : info.units));
    const markerTokens = (await counter.count([clipMarker(99999)], enc))[0] ?? 16;
    while (total > limit) {
      let best: Unit | undefined;
      for (const u of units) {
        if (!u.cut && u.tokens > MIN_KEPT_TOKENS + markerTokens && (!best || u.tokens > best.tokens)) best = u;
      }
      if (!best) break;
      const excess = total - limit;
      const keep = Math.max(MIN_KEPT_TOKENS, best.tokens - excess - markerTokens - 2);
      const cut = await cutMiddle(best.text, best.tokens, keep, counter, enc);
      best.cut = true;
      if (cut.tokens >= best.tokens) continue;
      total -= best.tokens - cut.tokens;
      best.text = cut.text;
      best.tokens = cut.tokens;
      truncated.add(best.msg);
    }
  }

  // 5. Assemble: untouched messages by reference, changed ones as shallow copies.
  const out: ChatMessage[] = [];
  messages.forEach((m, i) => {
    if (dropped[i]) return;
    if (!truncated.has(i)) {
      out.push(m);
      return;
    }
    const units = infos[i].units.filter((u) => u.cut);
    const whole = units.find((u) => u.part === -1);
    if (whole) {
      out.push({ ...m, content: whole.text });
      return;
    }
    const byPart = new Map(units.map((u) => [u.part, u.text]));
    const parts = (m.content as ContentPart[]).map((p, idx) => (byPart.has(idx) ? { ...p, text: byPart.get(idx)! } : p)) as ContentPart[];
    out.push({ ...m, content: parts });
  });
  return {
    messages: out,
    clipped: droppedMessages > 0 || truncated.size > 0,
    droppedMessages,
    truncatedMessages: truncated.size,
    tokens: total,
    limit,
    counted: true,
  };
}

/**
 * Groups of message indices that may be dropped, in the order they should go. Messages linked by a tool
 * call id (or a legacy function_call and its `function` answer) form one group; a group with any kept
 * member (system/developer, or in the latest user turn) is kept whole.
 */
export function dropOrder(messages: readonly ChatMessage[]): number[][] {
  const n = messages.length;
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };

  let lastUser = -1;
  const owner = new Map<string, number>();
  let lastFunctionCaller = -1;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    if (!m) continue;
    if (m.role === 'user') lastUser = i;
    if (Array.isArray(m.tool_calls)) {
      for (const tc of m.tool_calls) if (tc && typeof tc.id === 'string') owner.set(tc.id, i);
    }
    if (m.function_call) lastFunctionCaller = i;
    if (m.role === 'tool' && typeof m.tool_call_id === 'string') {
      const o = owner.get(m.tool_call_id);
      if (o !== undefined) union(i, o);
    } else if (m.role === 'function' && lastFunctionCaller >= 0) union(i, lastFunctionCaller);
  }
  const tailStart = lastUser >= 0 ? lastUser : n - 1;

  const pinnedRoot = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const role = messages[i]?.role;
    if (i >= tailStart || role === 'system' || role === 'developer') pinnedRoot[find(i)] = 1;
  }

  // Members of each droppable group, keyed by root; the group belongs to the turn of its first member.
  const members = new Map<number, number[]>();
  for (let i = 0; i < tailStart; i++) {
    const r = find(i);
    if (pinnedRoot[r]) continue;
    const list = members.get(r);
    if (list) list.push(i);
    else members.set(r, [i]);
  }
  const order: number[][] = [];
  let turnGroups: number[][] = [];
  let turnHead: number[] | undefined;
  // A turn's steps go oldest first, but its last step leaves together with its user message: a question
  // is never left without any answer (nor two user messages in a row).
  const closeTurn = (): void => {
    if (turnHead) {
      const last = turnGroups.pop();
      order.push(...turnGroups);
      order.push(last ? [...turnHead, ...last].sort((a, b) => a - b) : turnHead);
    } else order.push(...turnGroups);
    turnGroups = [];
    turnHead = undefined;
  };
  for (let i = 0; i < tailStart; i++) {
    const isUser = messages[i]?.role === 'user';
    if (isUser) closeTurn();
    const r = find(i);
    const group = members.get(r);
    if (!group || group[0] !== i) continue; // pinned, or not the group's first member
    if (isUser) turnHead = group;
    else turnGroups.push(group);
  }
  closeTurn();
  return order;
}

interface Cut {
  text: string;
  tokens: number;
}

/** Index ≤ `at` that does not split a surrogate pair, preferring a line start within the last 256 chars. */
function headEnd(text: string, at: number): number {
  let i = Math.max(0, Math.min(at, text.length));
  if (i > 0 && i < text.length) {
    const nl = text.lastIndexOf('\n', i - 1);
    if (nl >= 0 && i - (nl + 1) < 256 && nl + 1 > i * 0.9) i = nl + 1;
  }
  if (i > 0 && i < text.length && (text.charCodeAt(i) & 0xfc00) === 0xdc00) i--;
  return i;
}

/** Index ≥ `at` that does not split a surrogate pair, preferring a line start within the next 256 chars. */
function tailBegin(text: string, at: number): number {
  let i = Math.max(0, Math.min(at, text.length));
  if (i > 0) {
    const nl = text.indexOf('\n', i);
    if (nl >= 0 && nl + 1 - i < 256) i = nl + 1;
  }
  if (i > 0 && i < text.length && (text.charCodeAt(i) & 0xfc00) === 0xdc00) i++;
  return i;
}

/** Longest prefix (or suffix) of `text` whose UTF-8 length is at most `bytes`. */
function byteBounded(text: string, bytes: number, fromEnd: boolean): string {
  let used = 0;
  if (!fromEnd) {
    let i = 0;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      const pair = (c & 0xfc00) === 0xd800 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      const b = pair ? 4 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
      if (used + b > bytes) break;
      used += b;
      i += pair ? 2 : 1;
    }
    return text.slice(0, i);
  }
  let i = text.length;
  while (i > 0) {
    const c = text.charCodeAt(i - 1);
    const pair = (c & 0xfc00) === 0xdc00 && i - 2 >= 0 && (text.charCodeAt(i - 2) & 0xfc00) === 0xd800;
    const b = pair ? 4 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
    if (used + b > bytes) break;
    used += b;
    i -= pair ? 2 : 1;
  }
  return text.slice(i);
}

/** Keeps about `keep` tokens of `text` (half head, half tail) around a marker naming what was cut. */
async function cutMiddle(text: string, tokens: number, keep: number, counter: TokenCounter, enc: EncodingName): Promise<Cut> {
  let head = '';
  let tail = '';
  let h = 0;
  let t = 0;
  let fits = false;
  let ratio = Math.min(1, keep / Math.max(1, tokens));
  for (let attempt = 0; attempt < 4 && !fits; attempt++) {
    const half = Math.floor((text.length * ratio) / 2);
    const he = headEnd(text, half);
    const ts = Math.max(he, tailBegin(text, text.length - half));
    head = text.slice(0, he);
    tail = text.slice(ts);
    [h, t] = await counter.count([head, tail], enc);
    if (h + t <= keep) fits = true;
    else ratio *= (keep / (h + t)) * 0.97;
  }
  if (!fits) {
    // Always fits: a token is at least one byte.
    head = byteBounded(text, Math.floor(keep / 2), false);
    tail = byteBounded(text.slice(head.length), Math.floor(keep / 2), true);
    [h, t] = await counter.count([head, tail], enc);
  }
  const marker = clipMarker(Math.max(0, tokens - h - t));
  const m = (await counter.count([marker], enc))[0] ?? 0;
  return { text: head + marker + tail, tokens: h + t + m };
}
