/**
 * OpenAI Responses API (Codex CLI): POST /v1/responses passed through to Poe's, with errors in
 * OpenAI's shape and the paused message as a Response object or its event stream.
 */
import { plausibleTokens } from './accounting';
import { randomId } from './completions';
import { sseData } from '../poe/sse';
import type { ProxyError } from '../http/errors';
import { worstOutputLimit } from './guards';
import type { RelayState, WireDialect } from './passthrough';
import { validateResponsesRequest } from './validate';

export const RESPONSES_PATH = '/v1/responses';

const ZERO_USAGE = {
  input_tokens: 0,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 0,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 0,
};

function responseObject(id: string, model: string, status: 'in_progress' | 'completed', output: unknown[]): Record<string, unknown> {
  return {
    id,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status,
    error: null,
    incomplete_details: null,
    instructions: null,
    model,
    output,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: status === 'completed' ? ZERO_USAGE : null,
    metadata: {},
  };
}

function outputMessage(id: string, text: string): Record<string, unknown> {
  return { id, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
}

export function responsesMessage(model: string, text: string): Record<string, unknown> {
  return responseObject(randomId('resp_'), model, 'completed', [outputMessage(randomId('msg_'), text)]);
}

/** A whole answer as the Responses event stream (response.created … response.completed). */
export function responsesMessageStream(model: string, text: string): string {
  const id = randomId('resp_');
  const item_id = randomId('msg_');
  const done = outputMessage(item_id, text);
  const part = { type: 'output_text', text, annotations: [] };
  let seq = 0;
  const ev = (type: string, data: Record<string, unknown>): string => sseData(JSON.stringify({ type, sequence_number: seq++, ...data }), type);
  const at = { item_id, output_index: 0, content_index: 0 };
  return (
    ev('response.created', { response: responseObject(id, model, 'in_progress', []) }) +
    ev('response.output_item.added', { output_index: 0, item: { ...done, status: 'in_progress', content: [] } }) +
    ev('response.content_part.added', { ...at, part: { ...part, text: '' } }) +
    ev('response.output_text.delta', { ...at, delta: text }) +
    ev('response.output_text.done', { ...at, text }) +
    ev('response.content_part.done', { ...at, part }) +
    ev('response.output_item.done', { output_index: 0, item: done }) +
    ev('response.completed', { response: responseObject(id, model, 'completed', [done]) })
  );
}

function readUsage(u: unknown, state: RelayState): void {
  if (!u || typeof u !== 'object') return;
  const usage = u as Record<string, unknown>;
  const input = plausibleTokens(usage.input_tokens);
  const output = plausibleTokens(usage.output_tokens);
  if (input !== undefined) state.inputTokens = input;
  if (output !== undefined) state.outputTokens = output;
}

/** The texts a Responses request sends: instructions, input items (messages, tool calls and outputs), tools. */
export function responsesInputTexts(body: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (typeof body.instructions === 'string') out.push(body.instructions);
  if (typeof body.input === 'string') out.push(body.input);
  else if (Array.isArray(body.input)) {
    for (const item of body.input) {
      if (!item || typeof item !== 'object') continue;
      const it = item as Record<string, unknown>;
      if (typeof it.content === 'string') out.push(it.content);
      else if (Array.isArray(it.content))
        out.push(
          it.content
            .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
            .join('\n'),
        );
      else if (it.type === 'function_call') out.push(`${String(it.name ?? '')}${String(it.arguments ?? '')}`);
      else if (it.type === 'function_call_output') out.push(typeof it.output === 'string' ? it.output : JSON.stringify(it.output ?? ''));
    }
  }
  if (Array.isArray(body.tools)) for (const t of body.tools) out.push(JSON.stringify(t));
  return out;
}

export const responsesDialect: WireDialect = {
  endpoint: 'responses',
  upstreamPath: RESPONSES_PATH,
  checkModel() {
    // Poe's Responses endpoint takes the same bots as chat completions.
  },
  upstreamHeaders: () => ({}),
  validate: validateResponsesRequest,
  inputTexts: responsesInputTexts,
  maxOutputTokens: (body) => worstOutputLimit(body.max_output_tokens, body.max_tokens, body.max_completion_tokens),
  pausedJson: responsesMessage,
  pausedStream: responsesMessageStream,
  errorBody: (err: ProxyError) => err.toBody(),
  errorEvent: (err: ProxyError, state: RelayState) =>
    sseData(
      JSON.stringify({ type: 'error', code: err.code, message: err.message, param: err.param, sequence_number: (state.lastSequence ?? -1) + 1 }),
      'error',
    ),
  onEvent(type, data, state) {
    if (typeof data.sequence_number === 'number') state.lastSequence = data.sequence_number;
    switch (type) {
      case 'response.output_text.delta':
      case 'response.function_call_arguments.delta':
      case 'response.reasoning_summary_text.delta':
        if (typeof data.delta === 'string') state.text += data.delta;
        break;
      case 'response.completed':
      case 'response.incomplete':
        readUsage(data.response?.usage, state);
        state.completed = true;
        break;
      case 'response.failed':
        readUsage(data.response?.usage, state);
        state.failed = String(data.response?.error?.message ?? 'Poe reported that the response failed');
        break;
      case 'error':
        state.failed = String(data.message ?? data.error?.message ?? 'Poe reported an error in the stream');
        break;
    }
  },
  onJson(body: unknown, state: RelayState) {
    const b = body as { usage?: unknown; output?: unknown } | null;
    readUsage(b?.usage, state);
    if (Array.isArray(b?.output)) state.text = responsesInputTexts({ input: b.output }).join('');
    state.completed = true;
  },
};
