/**
 * Validation of the chat request body: each problem is a 400 that names the field.
 */
import { badRequest } from '../http/errors';
import type { ChatRequest } from './openaiTypes';

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'integer' | 'string|array' | 'string|object';

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function matches(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'string|array':
      return typeof v === 'string' || Array.isArray(v);
    case 'string|object':
      return typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v));
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    default:
      return typeof v === kind;
  }
}

/** Optional top-level fields with the type OpenAI documents; `null` is accepted as "not set". */
const FIELD_TYPES: Record<string, Kind> = {
  stream: 'boolean',
  max_tokens: 'integer',
  max_completion_tokens: 'integer',
  temperature: 'number',
  top_p: 'number',
  n: 'integer',
  stop: 'string|array',
  tools: 'array',
  tool_choice: 'string|object',
  parallel_tool_calls: 'boolean',
  stream_options: 'object',
  response_format: 'object',
  presence_penalty: 'number',
  frequency_penalty: 'number',
  seed: 'integer',
  user: 'string',
  logit_bias: 'object',
};

/** Parses and checks a chat-completions body; returns it typed. Unknown fields pass through untouched. */
export function validateChatRequest(body: unknown): ChatRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`The request body must be a JSON object, got ${kindOf(body)}.`, null);
  }
  const req = body as Record<string, unknown>;
  if (typeof req.model !== 'string' || req.model.trim() === '') {
    throw badRequest(
      req.model === undefined
        ? 'Missing "model": name a Poe model, e.g. "GPT-4.1" (list them with GET /v1/models).'
        : `"model" must be a non-empty string, got ${kindOf(req.model)}.`,
      'model',
    );
  }
  if (!Array.isArray(req.messages)) {
    throw badRequest(
      req.messages === undefined ? 'Missing "messages": send an array of chat messages.' : `"messages" must be an array, got ${kindOf(req.messages)}.`,
      'messages',
    );
  }
  if (req.messages.length === 0) throw badRequest('"messages" must contain at least one message.', 'messages');
  req.messages.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badRequest(`messages[${i}] must be an object, got ${kindOf(m)}.`, `messages[${i}]`);
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string') throw badRequest(`messages[${i}].role must be a string, got ${kindOf(msg.role)}.`, `messages[${i}].role`);
    const c = msg.content;
    if (c !== undefined && c !== null && typeof c !== 'string' && !Array.isArray(c)) {
      throw badRequest(`messages[${i}].content must be a string or an array of content parts, got ${kindOf(c)}.`, `messages[${i}].content`);
    }
    if (Array.isArray(c)) {
      c.forEach((p, j) => {
        if (typeof p !== 'object' || p === null || typeof (p as { type?: unknown }).type !== 'string') {
          throw badRequest(`messages[${i}].content[${j}] must be an object with a "type".`, `messages[${i}].content[${j}]`);
        }
      });
    }
    if (msg.tool_calls !== undefined && msg.tool_calls !== null && !Array.isArray(msg.tool_calls)) {
      throw badRequest(`messages[${i}].tool_calls must be an array.`, `messages[${i}].tool_calls`);
    }
  });
  checkFieldTypes(req, FIELD_TYPES, ['max_tokens', 'max_completion_tokens']);
  return req as ChatRequest;
}

/** Optional fields of `types` must have their type (null = not set); `positive` integers must be at least 1. */
export function checkFieldTypes(req: Record<string, unknown>, types: Record<string, Kind>, positive: readonly string[] = []): void {
  for (const [field, kind] of Object.entries(types)) {
    const v = req[field];
    if (v === undefined || v === null) continue;
    if (!matches(v, kind)) throw badRequest(`"${field}" must be ${kind.replace('|', ' or ')}, got ${kindOf(v)}.`, field);
  }
  for (const f of positive) {
    const v = req[f];
    if (typeof v === 'number' && v < 1) throw badRequest(`"${f}" must be at least 1.`, f);
  }
}

/**
 * Anthropic Messages: `messages` is a non-empty array of {role: user|assistant|system, content:
 * string|blocks} (Claude Code sends mid-conversation `system` messages); `max_tokens` is required.
 */
export function validateMessagesRequest(req: Record<string, unknown>): void {
  if (!Array.isArray(req.messages) || req.messages.length === 0) {
    throw badRequest(
      req.messages === undefined
        ? 'Missing "messages": send an array of {role, content} messages.'
        : `"messages" must be a non-empty array, got ${kindOf(req.messages)}.`,
      'messages',
    );
  }
  req.messages.forEach((m, i) => {
    const msg = (typeof m === 'object' && m !== null && !Array.isArray(m) ? m : undefined) as Record<string, unknown> | undefined;
    if (!msg || (msg.role !== 'user' && msg.role !== 'assistant' && msg.role !== 'system'))
      throw badRequest(`messages[${i}] must be an object with role "user", "assistant" or "system".`, `messages[${i}].role`);
    if (typeof msg.content !== 'string' && !Array.isArray(msg.content))
      throw badRequest(`messages[${i}].content must be a string or an array of content blocks, got ${kindOf(msg.content)}.`, `messages[${i}].content`);
  });
  if (req.max_tokens === undefined) throw badRequest('Missing "max_tokens": the Messages API requires the maximum number of tokens to generate.', 'max_tokens');
  checkFieldTypes(
    req,
    {
      max_tokens: 'integer',
      system: 'string|array',
      tools: 'array',
      temperature: 'number',
      top_p: 'number',
      top_k: 'integer',
      stop_sequences: 'array',
      metadata: 'object',
      tool_choice: 'object',
      thinking: 'object',
    },
    ['max_tokens'],
  );
}

/** OpenAI Responses: `input` is a string or an array of items. */
export function validateResponsesRequest(req: Record<string, unknown>): void {
  if (req.input === undefined || req.input === null) throw badRequest('Missing "input": send a string or an array of input items.', 'input');
  checkFieldTypes(
    req,
    {
      input: 'string|array',
      instructions: 'string',
      tools: 'array',
      max_output_tokens: 'integer',
      temperature: 'number',
      top_p: 'number',
      tool_choice: 'string|object',
      parallel_tool_calls: 'boolean',
      previous_response_id: 'string',
      reasoning: 'object',
      text: 'object',
      metadata: 'object',
      store: 'boolean',
    },
    ['max_output_tokens'],
  );
}
