/**
 * VS Code entry point. Activation (onStartupFinished) only builds the Ctx — cheap and synchronous;
 * keys, autostart and the tokenizer come afterwards. Deactivation stops the proxy, giving in-flight
 * streams a short grace.
 */
import * as vscode from 'vscode';
import { Ctx } from './ctx';
import { registerHistorySerializer } from './historyPanel';
import type { ProxyState } from './proxyController';

/** What `activate` returns (tests reach it through `vscode.extensions.getExtension(…).exports`). */
export interface PoeProxyApi {
  readonly ctx: Ctx;
  /** Resolves when startup (keys loaded, autostart attempted) is done. */
  readonly ready: Promise<void>;
  /** How long `activate` itself took, in ms. */
  readonly activationMs: number;
  state(): ProxyState;
  /** The OpenAI base URL (`…/v1`) of the proxy serving this window, if any. */
  baseUrl(): string | undefined;
  balance(): number | undefined;
}

let ctx: Ctx | undefined;

export function activate(context: vscode.ExtensionContext): PoeProxyApi {
  const started = performance.now();
  const c = new Ctx(context);
  ctx = c;
  context.subscriptions.push(c);
  // A history panel left open is restored after a reload; without a serializer its tab stays blank.
  registerHistorySerializer(context, () => c.ledger);
  const activationMs = performance.now() - started;
  c.logger.debug(`activated in ${activationMs.toFixed(1)} ms`);
  return {
    ctx: c,
    ready: c.ready,
    activationMs,
    state: () => c.controller.state,
    baseUrl: () => {
      const url = c.controller.state.url;
      return url ? `${url}/v1` : undefined;
    },
    balance: () => c.balance.balance,
  };
}

export async function deactivate(): Promise<void> {
  const c = ctx;
  ctx = undefined;
  await c?.shutdown();
}
