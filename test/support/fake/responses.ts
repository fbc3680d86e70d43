/** POST /v1/responses: the OpenAI Responses dialect (the response object and its typed SSE events). Errors use OpenAI's body. */
import type { ResponseFormat } from './chat';
import { slices, type JsonSchema, type MessageFields, type NextId, type NormReply } from './reply';

export const RESPONSES_PATH = '/v1/responses';

/** A Responses request as OpenAI documents it (Poe serves it for Codex CLI); the fields the response object echoes are listed. */
export interface ResponsesBody {
  model: string;
  /** A string, or input items: messages (role + content) and function_call / function_call_output items. */
  input?: string | MessageFields[];
  instructions?: string | null;
  stream?: boolean;
  text?: { format?: ResponseFormat };
  max_output_tokens?: number | null;
  parallel_tool_calls?: boolean | null;
  previous_response_id?: string | null;
  reasoning?: { effort?: string | null; summary?: string | null } | null;
  store?: boolean | null;
  temperature?: number | null;
  tool_choice?: string | { type: string; name?: string };
  tools?: Array<{ type: string; name?: string; description?: string; parameters?: JsonSchema }>;
  top_p?: number | null;
  truncation?: string | null;
  user?: string;
  metadata?: Record<string, string> | null;
}

interface OutputMessage {
  id: string;
  type: 'message';
  status: 'completed';
  role: 'assistant';
  content: Array<{ type: 'output_text'; text: string; annotations: never[]; logprobs: never[] }>;
}
interface OutputFunctionCall {
  id: string;
  type: 'function_call';
  status: 'completed';
  call_id: string;
  name: string;
  arguments: string;
}

function responsesUsage(r: NormReply) {
  return {
    input_tokens: r.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: r.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: r.promptTokens + r.completionTokens,
  };
}

function responseOutput(r: NormReply, msgId: string, fcIds: string[]): Array<OutputMessage | OutputFunctionCall> {
  const out: Array<OutputMessage | OutputFunctionCall> = [];
  if (r.text !== '' || r.toolCalls.length === 0) {
    out.push({
      id: msgId,
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: r.text, annotations: [], logprobs: [] }],
    });
  }
  r.toolCalls.forEach((t, i) => out.push({ id: fcIds[i], type: 'function_call', status: 'completed', call_id: t.id, name: t.name, arguments: t.arguments }));
  return out;
}

export function responseObject(
  body: ResponsesBody,
  r: NormReply,
  nextId: NextId,
  status: 'in_progress' | 'completed',
  ids?: { id: string; created: number; msgId: string; fcIds: string[] },
) {
  const id = ids?.id ?? nextId('resp_');
  const msgId = ids?.msgId ?? nextId('msg_');
  const fcIds = ids?.fcIds ?? r.toolCalls.map(() => nextId('fc_'));
  return {
    id,
    object: 'response',
    created_at: ids?.created ?? Math.floor(Date.now() / 1000),
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: body.model,
    output: status === 'completed' ? responseOutput(r, msgId, fcIds) : [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: status === 'completed' ? responsesUsage(r) : null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

export function responseFrames(body: ResponsesBody, r: NormReply, nextId: NextId): string[] {
  const ids = {
    id: nextId('resp_'),
    created: Math.floor(Date.now() / 1000),
    msgId: nextId('msg_'),
    fcIds: r.toolCalls.map(() => nextId('fc_')),
  };
  const frames: string[] = [];
  let seq = 0;
  const ev = (type: string, data: Record<string, unknown>) => {
    frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  };
  const inProgress = responseObject(body, r, nextId, 'in_progress', ids);
  ev('response.created', { response: inProgress });
  ev('response.in_progress', { response: inProgress });
  const final = responseObject(body, r, nextId, 'completed', ids);
  let outputIndex = 0;
  if (r.text !== '' || r.toolCalls.length === 0) {
    const item_id = ids.msgId;
    ev('response.output_item.added', {
      output_index: outputIndex,
      item: { id: item_id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
    });
    ev('response.content_part.added', {
      item_id,
      output_index: outputIndex,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    for (const p of r.pieces) ev('response.output_text.delta', { item_id, output_index: outputIndex, content_index: 0, delta: p, logprobs: [] });
    ev('response.output_text.done', { item_id, output_index: outputIndex, content_index: 0, text: r.text, logprobs: [] });
    ev('response.content_part.done', {
      item_id,
      output_index: outputIndex,
      content_index: 0,
      part: { type: 'output_text', text: r.text, annotations: [], logprobs: [] },
    });
    ev('response.output_item.done', { output_index: outputIndex, item: final.output[outputIndex] });
    outputIndex++;
  }
  r.toolCalls.forEach((t, i) => {
    const item_id = ids.fcIds[i];
    ev('response.output_item.added', {
      output_index: outputIndex,
      item: { id: item_id, type: 'function_call', status: 'in_progress', call_id: t.id, name: t.name, arguments: '' },
    });
    for (const frag of slices(t.arguments, 8)) ev('response.function_call_arguments.delta', { item_id, output_index: outputIndex, delta: frag });
    ev('response.function_call_arguments.done', { item_id, output_index: outputIndex, name: t.name, arguments: t.arguments });
    ev('response.output_item.done', { output_index: outputIndex, item: final.output[outputIndex] });
    outputIndex++;
  });
  ev('response.completed', { response: final });
  return frames;
}
