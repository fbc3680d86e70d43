/** POST /v1/messages: the Anthropic Messages dialect (its header and role checks, JSON and SSE shapes, Anthropic's error body). */
import type { IncomingHttpHeaders } from 'node:http';
import { slices, type JsonSchema, type NextId, type NormReply } from './reply';

export const MESSAGES_PATH = '/v1/messages';

/** A content block: text, image, tool_use, tool_result, thinking… (the fake reads text, tool_use and tool_result). */
export interface AnthropicBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: string | AnthropicBlock[];
}

export interface AnthropicMessage {
  role: string;
  content: string | AnthropicBlock[];
}

/** A Messages request as Anthropic documents it (Poe serves it for Claude models): `max_tokens` required, roles user and assistant. */
export interface MessagesBody {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string | AnthropicBlock[];
  stream?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop_sequences?: string[];
  tools?: Array<{ name: string; description?: string; input_schema?: JsonSchema }>;
  tool_choice?: { type: string; name?: string };
  metadata?: { user_id?: string };
  thinking?: { type: string; budget_tokens?: number };
}

/** anthropic-beta values the fake's /v1/messages accepts (which ones Poe accepts is unconfirmed); any other value → 400. */
const ACCEPTED_BETAS: ReadonlySet<string> = new Set([
  'prompt-caching-2024-07-31',
  'token-efficient-tools-2025-02-19',
  'interleaved-thinking-2025-05-14',
  'fine-grained-tool-streaming-2025-05-14',
  'output-128k-2025-02-19',
  'context-1m-2025-08-07',
]);
/**
 * The anthropic-beta value under which Anthropic accepts `{"role":"system"}` inside `messages`. Poe is not
 * known to accept it, so the fake refuses the value (an unknown beta) and such messages, as Anthropic's API
 * does without it: `messages.N.role: Input should be 'user' or 'assistant'`.
 */
export const MID_CONVERSATION_SYSTEM_BETA = 'mid-conversation-system-2026-04-07';

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** Anthropic's error body. */
export function anthropicErrorBody(status: number, message: string) {
  return { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message } };
}

/** The 400 message for an anthropic-beta value Poe does not accept, or undefined. */
export function unknownBetaMessage(headers: IncomingHttpHeaders): string | undefined {
  const betaHeader = headers['anthropic-beta'];
  if (betaHeader === undefined) return undefined;
  const values = (Array.isArray(betaHeader) ? betaHeader.join(',') : betaHeader)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = values.filter((v) => !ACCEPTED_BETAS.has(v));
  if (!unknown.length) return undefined;
  return `Unexpected value(s) \`${unknown.join('`, `')}\` for the \`anthropic-beta\` header. Please consult our documentation at docs.anthropic.com or try again without the header.`;
}

/** Roles as Anthropic's API takes them without MID_CONVERSATION_SYSTEM_BETA (which Poe refuses): user and assistant. */
export function badRoleMessage(messages: AnthropicMessage[]): string | undefined {
  const bad = messages.findIndex((m) => !(m?.role === 'user' || m?.role === 'assistant'));
  return bad >= 0 ? `messages.${bad}.role: Input should be 'user' or 'assistant'` : undefined;
}

function anthropicStop(r: NormReply): string {
  switch (r.finishReason) {
    case 'stop':
      return 'end_turn';
    case 'tool_calls':
      return 'tool_use';
    case 'length':
      return 'max_tokens';
    default:
      return r.finishReason;
  }
}

function anthropicToolId(id: string): string {
  return id.startsWith('call_') ? `toolu_${id.slice(5)}` : id;
}

export function anthropicMessage(model: string, r: NormReply, nextId: NextId) {
  const content: AnthropicBlock[] = [];
  if (r.text !== '' || r.toolCalls.length === 0) content.push({ type: 'text', text: r.text });
  for (const t of r.toolCalls) content.push({ type: 'tool_use', id: anthropicToolId(t.id), name: t.name, input: safeParse(t.arguments) });
  return {
    id: nextId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: anthropicStop(r),
    stop_sequence: null,
    usage: { input_tokens: r.promptTokens, output_tokens: r.completionTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

export function anthropicFrames(model: string, r: NormReply, nextId: NextId): string[] {
  const frames: string[] = [];
  const ev = (type: string, data: Record<string, unknown>) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  ev('message_start', {
    message: {
      id: nextId('msg_'),
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: r.promptTokens, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    },
  });
  let index = 0;
  if (r.text !== '' || r.toolCalls.length === 0) {
    ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
    ev('ping', {});
    for (const p of r.pieces) ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } });
    ev('content_block_stop', { index });
    index++;
  }
  for (const t of r.toolCalls) {
    ev('content_block_start', { index, content_block: { type: 'tool_use', id: anthropicToolId(t.id), name: t.name, input: {} } });
    ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const frag of slices(t.arguments, 8)) ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: frag } });
    ev('content_block_stop', { index });
    index++;
  }
  ev('message_delta', { delta: { stop_reason: anthropicStop(r), stop_sequence: null }, usage: { output_tokens: r.completionTokens } });
  ev('message_stop', {});
  return frames;
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return {};
  }
}
