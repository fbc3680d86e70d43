/**
 * The layered retry ladder for Poe's 400s. Each rung returns a more conservative request; rungs are
 * cumulative. The ladder remembers, per model, the rung that last worked so the next request does not
 * pay for the same failures again.
 */
import { contentText, type ChatMessage, type ChatRequest } from '../exchange/openaiTypes';

export interface Rung {
  name: string;
  /** Returns the adjusted request, or undefined when the rung changes nothing (skip it). */
  apply(req: ChatRequest): ChatRequest | undefined;
}

/** Params Poe does not need to produce an answer; the last rung removes them. */
export const OPTIONAL_PARAMS = [
  'stream_options',
  'parallel_tool_calls',
  'tool_choice',
  'top_p',
  'stop',
  'response_format',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'seed',
  'user',
  'metadata',
  'store',
  'service_tag',
  'reasoning_effort',
  'modalities',
  'prediction',
  'audio',
  'web_search_options',
  'verbosity',
] as const;

function cleanMessages(messages: ChatMessage[]): { messages: ChatMessage[]; changed: boolean } {
  let changed = false;
  const out: ChatMessage[] = [];
  for (const m of messages) {
    let msg = m;
    if (msg.role === 'developer') {
      msg = { ...msg, role: 'system' };
      changed = true;
    }
    if (Array.isArray(msg.content)) {
      const onlyText = msg.content.every((p) => (p as { type?: string }).type === 'text');
      if (onlyText || msg.role === 'tool' || msg.role === 'system') {
        msg = { ...msg, content: contentText(msg.content) };
        changed = true;
      }
    }
    const empty = (msg.content === null || msg.content === undefined || msg.content === '') && !msg.tool_calls?.length;
    if (empty && msg.role !== 'tool') {
      changed = true;
      continue;
    }
    out.push(msg);
  }
  return { messages: out, changed };
}

export const RUNGS: readonly Rung[] = [
  {
    name: 'clean messages (developer→system, drop empty, flatten text parts)',
    apply(req) {
      const { messages, changed } = cleanMessages(req.messages);
      return changed ? { ...req, messages } : undefined;
    },
  },
  {
    name: 'drop max_tokens',
    apply(req) {
      if (req.max_tokens === undefined && req.max_completion_tokens === undefined) return undefined;
      const { max_tokens: _a, max_completion_tokens: _b, ...rest } = req;
      return rest as ChatRequest;
    },
  },
  {
    name: 'lowercase model name',
    apply(req) {
      const lower = req.model.toLowerCase();
      return lower === req.model ? undefined : { ...req, model: lower };
    },
  },
  {
    name: 'strip optional params',
    apply(req) {
      const out: ChatRequest = { ...req };
      let changed = false;
      for (const p of OPTIONAL_PARAMS) {
        if (p in out) {
          delete out[p];
          changed = true;
        }
      }
      return changed ? out : undefined;
    },
  },
];

/** Remembers the highest rung that made a model work, so later requests start there. */
export class LadderMemory {
  private readonly start = new Map<string, number>();
  constructor(private readonly maxModels = 256) {}

  startRung(model: string): number {
    return this.start.get(model) ?? 0;
  }

  /** `rungsApplied` = number of rungs applied before success. */
  remember(model: string, rungsApplied: number): void {
    if (rungsApplied <= 0) return;
    if (this.start.size >= this.maxModels && !this.start.has(model)) {
      const oldest = this.start.keys().next().value;
      if (oldest !== undefined) this.start.delete(oldest);
    }
    this.start.set(model, Math.max(rungsApplied, this.start.get(model) ?? 0));
  }
}

/** Applies rungs [0, upTo) to a request; used to start a request at the remembered rung. */
export function applyRungs(req: ChatRequest, upTo: number): ChatRequest {
  let out = req;
  for (let i = 0; i < upTo && i < RUNGS.length; i++) out = RUNGS[i].apply(out) ?? out;
  return out;
}
