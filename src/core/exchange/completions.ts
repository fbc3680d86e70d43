/**
 * Builders for chat-completion objects and chunks the proxy writes itself (paused message, footer,
 * a stream synthesised from a non-streamed answer).
 */
import { randomBytes } from 'node:crypto';
import type { ChatChunk, ChatCompletion, Usage } from './openaiTypes';
import { SSE_DONE, sseData } from '../poe/sse';

/** An id in the form the wire formats use: a prefix and 24 random hex digits. */
export function randomId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

export function completionId(): string {
  return randomId('chatcmpl-');
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function chunk(base: { id: string; model: string; created: number }, delta: ChatChunk['choices'][0]['delta'], finish: string | null = null): ChatChunk {
  return { id: base.id, object: 'chat.completion.chunk', created: base.created, model: base.model, choices: [{ index: 0, delta, finish_reason: finish }] };
}

export function usageChunk(base: { id: string; model: string; created: number }, usage: Usage): ChatChunk {
  return { id: base.id, object: 'chat.completion.chunk', created: base.created, model: base.model, choices: [], usage };
}

export function assistantCompletion(model: string, content: string, usage: Usage, finish = 'stop'): ChatCompletion {
  return {
    id: completionId(),
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
    usage,
  };
}

/**
 * Renders a whole completion as the SSE a streaming client expects (used for the paused message and
 * for media models, which Poe answers only without streaming).
 */
export function completionAsSse(c: ChatCompletion, includeUsage: boolean): string {
  const base = { id: c.id, model: c.model, created: c.created };
  const choice = c.choices[0];
  const msg = choice?.message ?? { role: 'assistant', content: '' };
  let out = sseData(JSON.stringify(chunk(base, { role: 'assistant', content: '' })));
  if (typeof msg.content === 'string' && msg.content.length > 0) out += sseData(JSON.stringify(chunk(base, { content: msg.content })));
  if (msg.tool_calls?.length) {
    out += sseData(
      JSON.stringify(
        chunk(base, {
          tool_calls: msg.tool_calls.map((t, index) => ({
            index,
            id: t.id,
            type: t.type,
            function: { name: t.function.name, arguments: t.function.arguments },
          })),
        }),
      ),
    );
  }
  out += sseData(JSON.stringify(chunk(base, {}, choice?.finish_reason ?? 'stop')));
  if (includeUsage && c.usage) out += sseData(JSON.stringify(usageChunk(base, c.usage)));
  return out + SSE_DONE;
}

export const ZERO_USAGE: Usage = Object.freeze({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }) as Usage;
