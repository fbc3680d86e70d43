/** POST /v1/chat/completions: Poe's OpenAI-compatible chat dialect (its pickiness, its JSON and SSE shapes, OpenAI's error body). */
import { slices, type JsonSchema, type NextId, type NormReply } from './reply';

export const CHAT_PATH = '/v1/chat/completions';

/** A content part: text, an image, or another kind Poe passes on to the bot. */
export interface ChatContentPart {
  type: string;
  text?: string;
}

export interface ChatToolCall {
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

/** A message as Poe's chat completions take it (OpenAI's shape; the roles Poe accepts are POE_CHAT_ROLES). */
export interface ChatMessage {
  role: string;
  content?: string | ChatContentPart[] | null;
  name?: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
}

/** chat `response_format`, or Responses `text.format` (whose schema sits beside `type`). */
export interface ResponseFormat {
  type: string;
  json_schema?: { name?: string; schema?: JsonSchema; strict?: boolean };
  schema?: JsonSchema;
}

/** A chat completions request as Poe documents it: OpenAI's fields, `n` = 1, usage in a stream only with `stream_options.include_usage`. */
export interface ChatBody {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  n?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  tools?: Array<{ type: string; function?: { name: string; description?: string; parameters?: JsonSchema } }>;
  tool_choice?: string | { type: string; function?: { name: string } };
  response_format?: ResponseFormat;
  user?: string;
}

/** Built-in Poe pickiness messages. */
export const DEVELOPER_ROLE_MESSAGE = "Input should be 'system', 'user' or 'bot'";
const N_GREATER_THAN_ONE_MESSAGE = "Invalid 'n': only n=1 is supported";
/** Roles Poe's chat completions accept in `messages` (it maps assistant to its 'bot'); anything else (developer, function, …) is refused with DEVELOPER_ROLE_MESSAGE. */
const POE_CHAT_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];

/** What Poe refuses in a chat request: returns the 400 message, or undefined. */
export type ChatRejection = (body: ChatBody) => string | undefined;

/** The refusals Poe is known for: a role other than POE_CHAT_ROLES, and n > 1. */
export function builtinChatRejections(): ChatRejection[] {
  return [
    (b) => (Array.isArray(b?.messages) && b.messages.some((m) => !POE_CHAT_ROLES.includes(m?.role)) ? DEVELOPER_ROLE_MESSAGE : undefined),
    (b) => (typeof b?.n === 'number' && b.n > 1 ? N_GREATER_THAN_ONE_MESSAGE : undefined),
  ];
}

const OPENAI_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'insufficient_credits',
  403: 'moderation_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'server_error',
  502: 'upstream_error',
  503: 'service_unavailable',
  529: 'overloaded_error',
};

/** OpenAI's error body (chat, Responses, models, usage). */
export function openAiErrorBody(status: number, message: string, code?: string) {
  return {
    error: {
      message,
      type: OPENAI_ERROR_TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
      code: code ?? OPENAI_ERROR_TYPES[status] ?? null,
    },
  };
}

export function chatCompletion(model: string, r: NormReply, nextId: NextId) {
  const message: Record<string, unknown> = { role: 'assistant', content: r.text === '' && r.toolCalls.length ? null : r.text, refusal: null };
  if (r.toolCalls.length) {
    message.tool_calls = r.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));
  }
  return {
    id: nextId('chatcmpl-'),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: r.finishReason }],
    usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens },
  };
}

export function chatFrames(model: string, r: NormReply, includeUsage: boolean, nextId: NextId): string[] {
  const id = nextId('chatcmpl-');
  const created = Math.floor(Date.now() / 1000);
  const frames: string[] = [];
  const chunk = (delta: Record<string, unknown>, finish: string | null) => {
    const c: Record<string, unknown> = {
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    if (includeUsage) c.usage = null;
    frames.push(`data: ${JSON.stringify(c)}\n\n`);
  };
  let first = true;
  const withRole = (d: Record<string, unknown>) => {
    if (!first) return d;
    first = false;
    return { role: 'assistant', ...d };
  };
  for (const p of r.pieces) chunk(withRole({ content: p }), null);
  r.toolCalls.forEach((t, index) => {
    const head: Record<string, unknown> = { tool_calls: [{ index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] };
    chunk(first ? withRole({ content: null, ...head }) : head, null);
    for (const frag of slices(t.arguments, 8)) chunk({ tool_calls: [{ index, function: { arguments: frag } }] }, null);
  });
  if (first) chunk(withRole({ content: '' }), null);
  chunk({}, r.finishReason);
  if (includeUsage) {
    frames.push(
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [],
        usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens },
      })}\n\n`,
    );
  }
  frames.push('data: [DONE]\n\n');
  return frames;
}
