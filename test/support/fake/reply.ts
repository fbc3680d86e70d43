/** What the fake answers: the reply a test scripts (or the default echo), and the prompt/completion token estimates every dialect shares. */
import { contentText } from '../../../src/core/exchange/openaiTypes';
import type { ChatBody, ChatToolCall, ResponseFormat } from './chat';
import type { AnthropicBlock, MessagesBody } from './messages';
import type { ResponsesBody } from './responses';
import type { RecordedRequest } from './server';

/** A request the fake answered, once its checks passed: its dialect's documented shape. */
export type GenerationBody = ChatBody | ResponsesBody | MessagesBody;

/** A message in any dialect (chat or Anthropic message, Responses input item), as the estimates read it: every field is checked at run time. */
export interface MessageFields {
  role?: string;
  content?: unknown;
  name?: string;
  /** chat */
  tool_calls?: ChatToolCall[];
  /** Responses function_call / function_call_output items */
  type?: string;
  arguments?: string;
  output?: unknown;
}

/** What the estimates and the default reply read from a request, in any of the three dialects. */
export interface PromptFields {
  /** chat and Anthropic */
  messages?: MessageFields[];
  /** Responses */
  instructions?: string | null;
  input?: string | MessageFields[];
  text?: { format?: ResponseFormat };
  /** Anthropic */
  system?: string | AnthropicBlock[];
  /** chat */
  response_format?: ResponseFormat;
}

/** The JSON-schema keywords schemaInstance understands. */
export interface JsonSchema {
  $ref?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  minimum?: number;
  minLength?: number;
}

export type ChatReply = {
  content?: string;
  /** Streamed pieces (joined, they are the content). Overrides `content`. */
  chunks?: string[];
  toolCalls?: Array<{ id?: string; name: string; arguments: string }>;
  /** Default 'tool_calls' when toolCalls are present, else 'stop'. */
  finishReason?: string;
  /** Overrides the token estimate. */
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** Delay between SSE frames; a non-streamed answer waits chunkDelayMs × number of pieces. */
  chunkDelayMs?: number;
};

export type ReplyFn = (body: GenerationBody, req: RecordedRequest) => ChatReply | Promise<ChatReply>;

/** The reply text when the request has no user message. */
export const NO_USER_MESSAGE_TEXT = 'Hello from FakePoe.';

/** ceil(chars / 4). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Text of a content value in any of the three dialects (string, or parts of type text/input_text/output_text, or tool_result). */
export function anyContentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    if (!part || typeof part !== 'object') continue;
    const p = part as Record<string, unknown>;
    let t = '';
    if (typeof p.text === 'string' && (p.type === 'text' || p.type === 'input_text' || p.type === 'output_text')) t = p.text;
    else if (p.type === 'tool_result') t = anyContentText(p.content);
    else if (p.type === 'tool_use') t = (typeof p.name === 'string' ? p.name : '') + JSON.stringify(p.input ?? {});
    if (t) out += (out ? '\n' : '') + t;
  }
  return out;
}

function messageText(m: MessageFields | string | null | undefined): string {
  if (!m || typeof m !== 'object') return typeof m === 'string' ? m : '';
  let t =
    Array.isArray(m.content) && m.content.some((p: { type?: unknown } | null) => p && p.type !== 'text')
      ? anyContentText(m.content)
      : contentText(m.content as Parameters<typeof contentText>[0]);
  if (typeof m.name === 'string') t += m.name;
  if (Array.isArray(m.tool_calls)) {
    for (const tc of m.tool_calls) t += String(tc?.function?.name ?? '') + String(tc?.function?.arguments ?? '');
  }
  // Responses API function_call / function_call_output items
  if (m.type === 'function_call') t += String(m.name ?? '') + String(m.arguments ?? '');
  if (m.type === 'function_call_output') t += typeof m.output === 'string' ? m.output : JSON.stringify(m.output ?? '');
  return t;
}

/** The messages of a request in any dialect (chat `messages`, Responses `instructions`+`input`, Anthropic `system`+`messages`). */
function requestMessages(body: PromptFields | undefined): MessageFields[] {
  if (!body || typeof body !== 'object') return [];
  const out: MessageFields[] = [];
  if (body.instructions !== undefined && body.instructions !== null) out.push({ role: 'system', content: body.instructions });
  if (body.system !== undefined && body.system !== null) out.push({ role: 'system', content: body.system });
  if (typeof body.input === 'string') out.push({ role: 'user', content: body.input });
  else if (Array.isArray(body.input)) out.push(...body.input);
  if (Array.isArray(body.messages)) out.push(...body.messages);
  return out;
}

/** Deterministic prompt-token estimate: Σ (ceil(chars/4) + 3) over the messages. Works for all three dialects. */
export function countPromptTokens(body: PromptFields | undefined): number {
  let n = 0;
  for (const m of requestMessages(body)) n += estimateTokens(messageText(m)) + 3;
  return n;
}

/** Text of the last user message in any dialect, or undefined. */
export function lastUserText(body: PromptFields | undefined): string | undefined {
  const msgs = requestMessages(body);
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (m && typeof m === 'object' && m.role === 'user') return messageText(m);
  }
  return undefined;
}

/** The default reply: `Echo: <last user text>`, or NO_USER_MESSAGE_TEXT; in JSON mode a JSON document instead (see jsonModeReply). */
export function defaultReply(body: PromptFields | undefined): ChatReply {
  const json = jsonModeReply(body);
  if (json !== undefined) return { content: json };
  const t = lastUserText(body);
  return { content: t === undefined ? NO_USER_MESSAGE_TEXT : `Echo: ${t}` };
}

/**
 * The JSON schema or JSON mode a request asks for: chat `response_format` ({type:'json_object'} or
 * {type:'json_schema', json_schema:{schema}}) or Responses `text.format` ({type:'json_schema', schema}).
 * undefined when the request wants prose; `{}` for JSON mode without a schema.
 */
function requestedJsonSchema(body: PromptFields | undefined): JsonSchema | undefined {
  const f = body?.response_format ?? body?.text?.format;
  if (!f || typeof f !== 'object') return undefined;
  if (f.type === 'json_object') return {};
  if (f.type !== 'json_schema') return undefined;
  const schema = f.json_schema?.schema ?? f.schema;
  return schema && typeof schema === 'object' ? schema : {};
}

/** In JSON mode, a JSON text that is valid for the requested schema (as Poe's models answer then); else undefined. */
export function jsonModeReply(body: PromptFields | undefined): string | undefined {
  const schema = requestedJsonSchema(body);
  if (schema === undefined) return undefined;
  const value = Object.keys(schema).length ? schemaInstance(schema, schema) : { answer: `Echo: ${lastUserText(body) ?? ''}` };
  return JSON.stringify(value);
}

/** A small value that satisfies `schema` (required properties, first enum/const, minItems, anyOf's first branch, local $refs). */
export function schemaInstance(schema: JsonSchema | undefined, root: JsonSchema | undefined = schema, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 12) return null;
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) {
    const target = schema.$ref
      .slice(2)
      .split('/')
      .reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), root);
    return schemaInstance(target as JsonSchema | undefined, root, depth + 1);
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const branch = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branch) && branch.length) return schemaInstance(branch.find((b) => b?.type !== 'null') ?? branch[0], root, depth + 1);
  if (Array.isArray(schema.allOf) && schema.allOf.length) return schemaInstance(Object.assign({}, ...schema.allOf), root, depth + 1);
  const type = Array.isArray(schema.type) ? (schema.type.find((t: string) => t !== 'null') ?? schema.type[0]) : schema.type;
  switch (type ?? (schema.properties ? 'object' : schema.items ? 'array' : 'string')) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = schema.properties ?? {};
      const required: string[] = Array.isArray(schema.required) ? schema.required : Object.keys(props);
      for (const k of required) out[k] = schemaInstance(props[k] ?? {}, root, depth + 1);
      return out;
    }
    case 'array':
      return Array.from({ length: Math.max(1, Number(schema.minItems) || 0) }, () => schemaInstance(schema.items ?? {}, root, depth + 1));
    case 'integer':
      return Math.max(1, Math.ceil(Number(schema.minimum ?? 1)));
    case 'number':
      return Number(schema.minimum ?? 1);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return 'x'.repeat(Math.max(1, Number(schema.minLength) || 1));
  }
}

/** Word-ish pieces whose concatenation is exactly `text` (each word keeps its trailing whitespace). */
export function splitWords(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
}

/** `s` in pieces of `size` characters (how the fake streams tool-call arguments). */
export function slices(s: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

/** A reply with its defaults filled in, as the dialect builders render it. */
export interface NormReply {
  text: string;
  pieces: string[];
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  delayMs: number;
}

/** Makes ids unique within one fake (`chatcmpl-fake000001`, `call_fake000002`, …). */
export type NextId = (prefix: string) => string;

export function normalizeReply(r: ChatReply | undefined, body: PromptFields, nextId: NextId): NormReply {
  const reply = r ?? {};
  const pieces = reply.chunks ? [...reply.chunks] : splitWords(reply.content ?? '');
  const text = reply.chunks ? reply.chunks.join('') : (reply.content ?? '');
  const toolCalls = (reply.toolCalls ?? []).map((t) => ({ id: t.id ?? nextId('call_'), name: t.name, arguments: t.arguments }));
  const completionText = text + toolCalls.map((t) => t.name + t.arguments).join('');
  return {
    text,
    pieces,
    toolCalls,
    finishReason: reply.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop'),
    promptTokens: reply.usage?.prompt_tokens ?? countPromptTokens(body),
    completionTokens: reply.usage?.completion_tokens ?? estimateTokens(completionText),
    delayMs: reply.chunkDelayMs ?? 0,
  };
}
