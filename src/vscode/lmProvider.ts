/**
 * Poe's models in Copilot Chat and for other extensions (vscode.lm), as a LanguageModelChatProvider.
 * Requests run the proxy's chat pipeline in process (core/inProcess.ts): same guards, clipping, retry
 * ladder, points and ledger as HTTP, without a socket and without the footer (VS Code has its own UI;
 * the points still go to the ledger, the status bar and the cost history).
 */
import * as vscode from 'vscode';
import type { ChatServices } from '../core/exchange/chat';
import type { ProxyConfig } from '../core/store/config';
import { InProcessAbortError, InProcessChatError, runChatInProcess, ToolCallAccumulator } from '../core/exchange/inProcess';
import type { LedgerEntry } from '../core/store/ledger';
import type { ChatMessage, ChatRequest } from '../core/exchange/openaiTypes';
import type { ModelEntry, ModelRegistry } from '../core/store/registry';
import { encodingForModel } from '../core/tokens';
import type { Config } from './config';
import type { ChannelLogger } from './logger';
import type { ProxyController } from './proxyController';
import { DisposableStore } from './registration';
import type { WindowEngine } from './windowEngine';

/** Must match `contributes.languageModelChatProviders[].vendor` in package.json. */
export const LM_VENDOR = 'poe-proxy';
/** The ledger's `client` for these requests. */
export const LM_CLIENT = 'vscode-lm';
/** OpenAI's per-message framing, as the proxy counts it. */
const PER_MESSAGE_OVERHEAD = 4;

export interface LmDeps {
  /** The window's engine: the same services, token counter and ledger as the proxy's socket. */
  engine: WindowEngine;
  controller: ProxyController;
  config: Config;
  logger: ChannelLogger;
  /** Called after each request the engine recorded while this window does not serve (status bar refresh). */
  onDidFinishDetached(entry: LedgerEntry): void;
}

interface PoeModelInfo extends vscode.LanguageModelChatInformation {
  readonly entry: ModelEntry;
}

export class PoeChatProvider implements vscode.LanguageModelChatProvider<PoeModelInfo>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeLanguageModelChatInformation = this.changed.event;
  private readonly subs = new DisposableStore();
  /** Subscribed on the first request (the engine is built on first use). */
  private finishSub: { dispose(): void } | undefined;

  constructor(private readonly deps: LmDeps) {
    this.subs.add(vscode.lm.registerLanguageModelChatProvider(LM_VENDOR, this));
    this.subs.add(deps.controller.onDidChangeState(() => this.invalidate()));
    this.subs.add(deps.config.onDidChange(() => this.invalidate()));
  }

  /** The model list may have changed (start/stop, settings, picks). */
  invalidate(): void {
    this.changed.fire();
  }

  // ---- models ---------------------------------------------------------------------------------

  async provideLanguageModelChatInformation(): Promise<PoeModelInfo[]> {
    const registry = await this.registry().catch((err: Error) => {
      this.deps.logger.warn(`language models: cannot load the models (${err.message})`);
      return undefined;
    });
    if (!registry) return [];
    const config = this.config();
    return registry.models.filter((m) => m.modality === 'text').map((m) => modelInfo(m, registry, config));
  }

  private config(): ProxyConfig {
    return this.deps.engine.core.config;
  }

  private registry(): Promise<ModelRegistry> {
    return this.deps.engine.registry();
  }

  // ---- requests -------------------------------------------------------------------------------

  /** The window's engine, its models loaded: the same pipeline, limits and ledger whether or not this window serves. */
  private async services(): Promise<ChatServices> {
    await this.registry();
    const engine = this.deps.engine.core;
    this.finishSub ??= engine.onDidFinishRequest((e) => {
      if (!this.deps.controller.server) this.deps.onDidFinishDetached(e);
    });
    return engine.inProcessServices();
  }

  async provideLanguageModelChatResponse(
    model: PoeModelInfo,
    messages: readonly vscode.LanguageModelChatRequestMessage[],
    options: vscode.ProvideLanguageModelChatResponseOptions,
    progress: vscode.Progress<vscode.LanguageModelResponsePart>,
    token: vscode.CancellationToken,
  ): Promise<void> {
    const request: ChatRequest = { ...modelOptions(options.modelOptions), model: model.id, messages: toOpenAiMessages(messages) };
    if (options.tools?.length) {
      request.tools = options.tools.map((t) => ({
        type: 'function',
        function: { name: t.name, description: t.description, parameters: t.inputSchema ?? { type: 'object', properties: {} } },
      }));
      request.tool_choice = options.toolMode === vscode.LanguageModelChatToolMode.Required ? 'required' : 'auto';
    }
    const abort = new AbortController();
    const cancel = token.onCancellationRequested(() => abort.abort());
    const calls = new ToolCallAccumulator();
    const flushCalls = (): void => {
      for (const c of calls.take()) progress.report(new vscode.LanguageModelToolCallPart(c.id, c.name, c.input));
    };
    try {
      if (token.isCancellationRequested) return;
      await runChatInProcess(await this.services(), request, {
        client: LM_CLIENT,
        signal: abort.signal,
        onChunk: (chunk) => {
          const choice = chunk.choices?.[0];
          if (!choice) return;
          const text = choice.delta?.content;
          if (typeof text === 'string' && text.length > 0) progress.report(new vscode.LanguageModelTextPart(text));
          calls.add(choice.delta);
          if (choice.finish_reason) flushCalls();
        },
      });
      flushCalls();
    } catch (err) {
      if (err instanceof InProcessAbortError) return; // cancelled by the caller: nothing to report
      if (err instanceof InProcessChatError) throw new Error(`Poe: ${err.message}`);
      throw err;
    } finally {
      cancel.dispose();
    }
  }

  async provideTokenCount(model: PoeModelInfo, text: string | vscode.LanguageModelChatRequestMessage): Promise<number> {
    const services = await this.services().catch(() => undefined);
    // VS Code hands back the object this provider listed; fall back to the id if it ever does not.
    const entry = model.entry ?? { id: model.id };
    const encoding = encodingForModel(entry.id, entry.encoding);
    if (!services) return Math.ceil((typeof text === 'string' ? text : messageText(text)).length / 4);
    if (typeof text === 'string') return services.tokens.countOne(text, encoding);
    return (await services.tokens.countOne(messageText(text), encoding)) + PER_MESSAGE_OVERHEAD;
  }

  dispose(): void {
    this.subs.dispose();
    this.finishSub?.dispose();
    this.changed.dispose();
  }
}

/** Creates the provider, registered under LM_VENDOR until disposed. */
export function registerLmProvider(deps: LmDeps): PoeChatProvider {
  return new PoeChatProvider(deps);
}

function modelInfo(m: ModelEntry, registry: ModelRegistry, config: ProxyConfig): PoeModelInfo {
  const context = registry.contextLimit(m, config.contextLimit);
  const output = m.maxOutputTokens ?? config.outputReserve;
  // The proxy keeps this much of the context free for the answer when it clips; telling VS Code the
  // same budget means a full prompt is sent as is, not clipped.
  const reserve = Math.min(config.outputReserve, m.maxOutputTokens ?? Number.POSITIVE_INFINITY);
  return {
    id: m.id,
    name: m.id,
    family: m.id,
    version: 'poe',
    detail: 'Poe',
    tooltip: `${m.id} via Poe — ~${m.base} points per message + ${m.per1kTokens} per 1k tokens (models.yaml estimate); context ${context.toLocaleString('en-US')} tokens`,
    maxInputTokens: Math.max(Math.floor(context / 4), context - reserve),
    maxOutputTokens: output,
    capabilities: { toolCalling: m.tools === true, imageInput: false },
    entry: m,
  };
}

/** The OpenAI request options VS Code callers may pass in `modelOptions` (anything else is dropped). */
function modelOptions(o: { readonly [name: string]: unknown } | undefined): Partial<ChatRequest> {
  const out: Partial<ChatRequest> = {};
  if (!o) return out;
  for (const k of ['temperature', 'top_p', 'max_tokens', 'max_completion_tokens', 'stop', 'seed', 'reasoning_effort']) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return out;
}

function role(r: vscode.LanguageModelChatMessageRole): 'user' | 'assistant' | 'system' {
  if (r === vscode.LanguageModelChatMessageRole.User) return 'user';
  if (r === vscode.LanguageModelChatMessageRole.Assistant) return 'assistant';
  return 'system'; // the proposed System role (3)
}

function partText(part: unknown): string {
  if (part instanceof vscode.LanguageModelTextPart) return part.value;
  if (part instanceof vscode.LanguageModelPromptTsxPart) return typeof part.value === 'string' ? part.value : JSON.stringify(part.value);
  if (part && typeof part === 'object' && typeof (part as { value?: unknown }).value === 'string') return (part as { value: string }).value;
  return '';
}

function messageText(m: vscode.LanguageModelChatRequestMessage): string {
  return m.content
    .map((p) => {
      if (p instanceof vscode.LanguageModelToolCallPart) return `${p.name}${JSON.stringify(p.input)}`;
      if (p instanceof vscode.LanguageModelToolResultPart) return p.content.map(partText).join('');
      return partText(p);
    })
    .join('');
}

/**
 * VS Code messages → OpenAI messages. Tool calls ride on the assistant message; each tool result
 * becomes a `tool` message placed right after it (OpenAI's order), before the user's own text.
 */
export function toOpenAiMessages(messages: readonly vscode.LanguageModelChatRequestMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    const r = role(m.role);
    let text = '';
    const toolCalls: NonNullable<ChatMessage['tool_calls']> = [];
    const results: ChatMessage[] = [];
    for (const p of m.content) {
      if (p instanceof vscode.LanguageModelToolCallPart) {
        toolCalls.push({ id: p.callId, type: 'function', function: { name: p.name, arguments: JSON.stringify(p.input ?? {}) } });
      } else if (p instanceof vscode.LanguageModelToolResultPart) {
        results.push({ role: 'tool', tool_call_id: p.callId, content: p.content.map(partText).join('') });
      } else {
        text += partText(p);
      }
    }
    out.push(...results);
    if (r === 'assistant' && toolCalls.length > 0) {
      out.push({ role: 'assistant', content: text || null, tool_calls: toolCalls });
    } else if (text || results.length === 0) {
      // `name` is left out: OpenAI restricts its characters and Poe's bots do not use it.
      out.push({ role: r, content: text });
    }
  }
  return out;
}
