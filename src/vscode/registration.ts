/**
 * What every adapter registers with: one disposable store (disposed in reverse order, a failing dispose
 * logged and skipped) and one command wrapper, so every command fails the same way (logged with its
 * stack, shown with "Show Logs").
 */
import * as vscode from 'vscode';
import type { ChannelLogger } from './logger';

export class DisposableStore implements vscode.Disposable {
  private readonly items: vscode.Disposable[] = [];
  private disposed = false;

  constructor(private readonly logger?: Pick<ChannelLogger, 'error'>) {}

  /** Keeps `d` until the store is disposed (at once when it already was). */
  add<T extends vscode.Disposable>(d: T): T {
    if (this.disposed) this.disposeOne(d);
    else this.items.push(d);
    return d;
  }

  dispose(): void {
    this.disposed = true;
    for (const d of this.items.splice(0).reverse()) this.disposeOne(d);
  }

  private disposeOne(d: vscode.Disposable): void {
    try {
      d.dispose();
    } catch (err) {
      this.logger?.error(`dispose failed: ${(err as Error)?.message ?? err}`);
    }
  }
}

/** Registers a `poeProxy.*` command: a failure is logged and shown with "Show Logs", and the command returns undefined. */
export function registerCommand(logger: Pick<ChannelLogger, 'error' | 'show'>, id: string, handler: (...args: unknown[]) => unknown): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await handler(...args);
    } catch (err) {
      logger.error(`${id} failed: ${(err as Error)?.stack ?? err}`);
      void vscode.window.showErrorMessage(`Poe: ${(err as Error)?.message ?? err}`, 'Show Logs').then((a) => {
        if (a) logger.show();
      });
      return undefined;
    }
  });
}
