/**
 * Anthropic Messages API (Claude Code, the Anthropic SDK): POST /v1/messages passed through to Poe's
 * Anthropic-compatible endpoint, POST /v1/messages/count_tokens answered locally, the model list in
 * Anthropic's shape, and errors and the paused message in Anthropic's format.
 *
 * Which models: Poe's Anthropic endpoint serves only Anthropic's own bots, so /v1/messages takes the
 * registry entries whose poe_name starts with "Claude" (case-insensitive); others get a 400 that
 * names the Claude models and points at /v1/chat/completions.
 */
import { PER_MESSAGE_OVERHEAD, plausibleTokens } from './accounting';
import { randomId } from './completions';
import { sseData } from '../poe/sse';
import { badRequest, ProxyError } from '../http/errors';
import { resolveRequestedModel, worstOutputLimit } from './guards';
import type { Logger } from '../log';
import type { RelayState, WireDialect } from './passthrough';
import type { RequestInfo } from './exchange';
import type { ModelEntry, ModelRegistry } from '../store/registry';
import { encodingForModel, type TokenCounter } from '../tokens';
import { validateMessagesRequest } from './validate';

export const ANTHROPIC_PATH = '/v1/messages';
/** Sent upstream when a client (e.g. curl) omits the header: Poe requires one. */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

/**
 * anthropic-beta values forwarded to Poe; any other value is dropped, because Poe answers 400 to a
 * beta it does not know (Claude Code sends several, e.g. claude-code-20250219, oauth-2025-04-20).
 */
export const ANTHROPIC_BETA_ALLOWLIST: readonly string[] = [
  'prompt-caching-2024-07-31',
  'token-efficient-tools-2025-02-19',
  'interleaved-thinking-2025-05-14',
  'fine-grained-tool-streaming-2025-05-14',
  'output-128k-2025-02-19',
  'context-1m-2025-08-07',
];

/**
 * The beta under which Claude Code (2.1.x, for some models) puts `{"role":"system"}` messages inside
 * `messages`. Poe is not known to accept it (it is not on the list above), so such messages are folded
 * into the neighbouring user turn instead (`foldSystemMessages`); once Poe accepts the beta, adding it
 * to ANTHROPIC_BETA_ALLOWLIST forwards them as they are.
 */
export const MID_CONVERSATION_SYSTEM_BETA = 'mid-conversation-system-2026-04-07';

type Block = Record<string, unknown>;
interface AnthropicMessage {
  role: string;
  content: string | Block[];
  [key: string]: unknown;
}

/** True when this request's mid-conversation system messages may go to Poe as they are. */
export function forwardsSystemMessages(betaHeader: string | string[] | undefined, allowlist: readonly string[] = ANTHROPIC_BETA_ALLOWLIST): boolean {
  return allowlist.includes(MID_CONVERSATION_SYSTEM_BETA) && betaValues(betaHeader).includes(MID_CONVERSATION_SYSTEM_BETA);
}

/** A system message's content as one `<system-reminder>` text block (the form Claude Code itself uses in user turns). */
function reminderBlock(content: unknown): Block {
  const blocks: unknown[] = typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? content : [];
  const texts = blocks.map((b) => (b && typeof b === 'object' && typeof (b as Block).text === 'string' ? ((b as Block).text as string) : JSON.stringify(b)));
  const last = blocks.at(-1) as Block | undefined;
  const block: Block = { type: 'text', text: `<system-reminder>\n${texts.join('\n\n')}\n</system-reminder>` };
  // A cache breakpoint on the system message stays where it was in the conversation.
  if (last && typeof last === 'object' && last.cache_control) block.cache_control = last.cache_control;
  return block;
}

function asBlocks(content: string | Block[]): Block[] {
  return typeof content === 'string' ? (content === '' ? [] : [{ type: 'text', text: content }]) : [...content];
}

/**
 * Folds each `{"role":"system"}` message inside `messages` into the neighbouring user turn as a
 * `<system-reminder>` text block, keeping the order: appended to the user turn before it, else put
 * first in the user turn after it (after its tool results, which must lead), else (between assistant turns or after the last one) sent as a user
 * turn of its own. Returns `messages` itself when there is nothing to fold; never mutates it.
 */
export function foldSystemMessages(messages: readonly AnthropicMessage[]): AnthropicMessage[] {
  if (!messages.some((m) => m.role === 'system')) return messages as AnthropicMessage[];
  const out: AnthropicMessage[] = [];
  let pending: Block[] = []; // reminders waiting for the next user turn
  for (const m of messages) {
    if (m.role === 'system') {
      const prev = out.at(-1);
      if (prev?.role === 'user' && pending.length === 0) out[out.length - 1] = { ...prev, content: [...asBlocks(prev.content), reminderBlock(m.content)] };
      else pending.push(reminderBlock(m.content));
      continue;
    }
    if (pending.length && m.role === 'user') {
      // Tool results must stay first in a user turn (Anthropic refuses text before them).
      const blocks = asBlocks(m.content);
      let results = 0;
      while (results < blocks.length && blocks[results].type === 'tool_result') results++;
      out.push({ ...m, content: [...blocks.slice(0, results), ...pending, ...blocks.slice(results)] });
      pending = [];
      continue;
    }
    if (pending.length) {
      out.push({ role: 'user', content: pending });
      pending = [];
    }
    out.push(m);
  }
  if (pending.length) out.push({ role: 'user', content: pending });
  return out;
}

export function isClaudeModel(model: ModelEntry): boolean {
  return /^claude/i.test(model.id);
}

function betaValues(header: string | string[] | undefined): string[] {
  return (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

/** Splits an anthropic-beta header into the values Poe accepts and the ones dropped. */
export function filterBetas(header: string | string[] | undefined): { kept: string[]; dropped: string[] } {
  const values = betaValues(header);
  const allowed = new Set(ANTHROPIC_BETA_ALLOWLIST);
  return { kept: values.filter((v) => allowed.has(v)), dropped: values.filter((v) => !allowed.has(v)) };
}

/** Anthropic's error type for an HTTP status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 415:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 408:
      return 'timeout_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export function anthropicErrorBody(err: ProxyError): { type: 'error'; error: { type: string; message: string } } {
  return { type: 'error', error: { type: anthropicErrorType(err.status), message: err.message } };
}

function sse(type: string, data: Record<string, unknown>): string {
  return sseData(JSON.stringify({ type, ...data }), type);
}

function messageId(): string {
  return randomId('msg_');
}

const ZERO_USAGE = { input_tokens: 0, output_tokens: 0 };

export function anthropicMessage(model: string, text: string): Record<string, unknown> {
  return {
    id: messageId(),
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: ZERO_USAGE,
  };
}

/** A whole message as the event stream Anthropic sends (message_start … message_stop). */
export function anthropicMessageStream(model: string, text: string): string {
  const message = { id: messageId(), type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: ZERO_USAGE };
  return (
    sse('message_start', { message }) +
    sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
    sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }) +
    sse('content_block_stop', { index: 0 }) +
    sse('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 0 } }) +
    sse('message_stop', {})
  );
}

/** Text of an Anthropic content value (string or blocks), tool calls and results included. */
function contentTexts(content: unknown, out: string[]): void {
  if (typeof content === 'string') {
    out.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const block of content) {
    if (!block || typeof block !== 'object') continue;
    const b = block as Record<string, unknown>;
    if (typeof b.text === 'string') out.push(b.text);
    else if (typeof b.thinking === 'string') out.push(b.thinking);
    else if (b.type === 'tool_use') out.push(`${String(b.name ?? '')}${JSON.stringify(b.input ?? {})}`);
    else if (b.type === 'tool_result') contentTexts(b.content, out);
  }
}

/** The texts a Messages request sends (system, messages, tool definitions), one per message or tool. */
export function anthropicInputTexts(body: Record<string, unknown>): string[] {
  const out: string[] = [];
  const system: string[] = [];
  contentTexts(body.system, system);
  if (system.length) out.push(system.join('\n'));
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      const parts: string[] = [];
      contentTexts((m as { content?: unknown } | null)?.content, parts);
      out.push(parts.join('\n'));
    }
  }
  if (Array.isArray(body.tools)) for (const t of body.tools) out.push(JSON.stringify(t));
  return out;
}

function inputTokensOf(u: Record<string, unknown> | undefined): number | undefined {
  const input = plausibleTokens(u?.input_tokens);
  if (input === undefined) return undefined;
  // Cached input is still input Poe processed (and prices).
  return input + (plausibleTokens(u!.cache_creation_input_tokens) ?? 0) + (plausibleTokens(u!.cache_read_input_tokens) ?? 0);
}

function readUsage(u: unknown, state: RelayState): void {
  if (!u || typeof u !== 'object') return;
  const usage = u as Record<string, unknown>;
  const input = inputTokensOf(usage);
  if (input !== undefined) state.inputTokens = input;
  const output = plausibleTokens(usage.output_tokens);
  if (output !== undefined) state.outputTokens = output;
}

export function anthropicDialect(logger: Logger): WireDialect {
  return {
    endpoint: 'messages',
    upstreamPath: ANTHROPIC_PATH,
    checkModel(model) {
      if (isClaudeModel(model) && model.modality === 'text') return;
      throw new ProxyError(
        400,
        `${model.id} is not a Claude model: POST /v1/messages serves only Claude models (models.yaml entries whose poe_name starts with "Claude"), because Poe's Anthropic-compatible endpoint only serves Anthropic's bots. Pick a Claude model, or send this model to POST /v1/chat/completions.`,
        'invalid_request_error',
        'model_not_supported',
        'model',
      );
    },
    upstreamHeaders(req: RequestInfo) {
      const version = req.headers['anthropic-version'];
      const headers: Record<string, string> = { 'anthropic-version': (Array.isArray(version) ? version[0] : version) || DEFAULT_ANTHROPIC_VERSION };
      const { kept, dropped } = filterBetas(req.headers['anthropic-beta']);
      if (dropped.length) logger.debug(`anthropic-beta: dropped ${dropped.join(', ')} (not on the list Poe accepts)`);
      if (kept.length) headers['anthropic-beta'] = kept.join(',');
      return headers;
    },
    upstreamBody(body: Record<string, unknown>, req: RequestInfo) {
      if (!Array.isArray(body.messages) || forwardsSystemMessages(req.headers['anthropic-beta'])) return body;
      const messages = foldSystemMessages(body.messages as AnthropicMessage[]);
      if (messages === body.messages) return body;
      logger.debug('folded mid-conversation system messages into user turns (Poe is not known to accept them)');
      return { ...body, messages };
    },
    validate: validateMessagesRequest,
    inputTexts: anthropicInputTexts,
    maxOutputTokens: (body) => worstOutputLimit(body.max_tokens, (body.thinking as { budget_tokens?: unknown } | undefined)?.budget_tokens),
    pausedJson: anthropicMessage,
    pausedStream: anthropicMessageStream,
    errorBody: anthropicErrorBody,
    errorEvent: (err) => sse('error', { error: anthropicErrorBody(err).error }),
    onEvent(type, data, state) {
      switch (type) {
        case 'message_start':
          readUsage(data.message?.usage, state);
          break;
        case 'content_block_delta': {
          const d = data.delta ?? {};
          const piece = d.text ?? d.partial_json ?? d.thinking;
          if (typeof piece === 'string') state.text += piece;
          break;
        }
        case 'message_delta':
          readUsage(data.usage, state);
          break;
        case 'message_stop':
          state.completed = true;
          break;
        case 'error':
          state.failed = String(data.error?.message ?? 'Poe reported an error in the stream');
          break;
      }
    },
    onJson(body: unknown, state: RelayState) {
      const b = body as { usage?: unknown; content?: unknown } | null;
      readUsage(b?.usage, state);
      const parts: string[] = [];
      contentTexts(b?.content, parts);
      state.text = parts.join('');
      state.completed = true;
    },
  };
}

/** POST /v1/messages/count_tokens, answered locally with the tokenizer: nothing reaches Poe. */
export async function countTokens(body: unknown, registry: ModelRegistry, tokens: TokenCounter): Promise<{ input_tokens: number }> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.', null, 'invalid_body');
  const b = body as Record<string, unknown>;
  // The model first (resolved like every endpoint's): an unknown one is the 404 that names it.
  const model = resolveRequestedModel(b, registry);
  if (!Array.isArray(b.messages)) throw badRequest('`messages` is required: the conversation to count.', 'messages', 'missing_messages');
  const counts = await tokens.count(anthropicInputTexts(b), encodingForModel(model?.id ?? String(b.model ?? ''), model?.encoding));
  return { input_tokens: counts.reduce((a, n) => a + n + PER_MESSAGE_OVERHEAD, 0) };
}

/** GET /v1/models for a client that sent anthropic-version: the Claude models, in Anthropic's list shape. */
export function anthropicModelList(registry: ModelRegistry, createdSeconds: number): Record<string, unknown> {
  const createdAt = new Date(createdSeconds * 1000).toISOString();
  const data = registry.models
    .filter((m) => isClaudeModel(m) && m.modality === 'text')
    .map((m) => ({ type: 'model', id: m.id, display_name: m.id, created_at: createdAt }));
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
