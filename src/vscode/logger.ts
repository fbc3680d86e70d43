/**
 * The core Logger on top of one LogOutputChannel ("Poe Proxy"). Every line goes through `redact`, so a
 * registered secret (Poe key, access key) never reaches the channel. The level is VS Code's own
 * ("Developer: Set Log Level…" or the gear in the Output view).
 */
import * as vscode from 'vscode';
import { redact, type Logger } from '../core/log';

export class ChannelLogger implements Logger, vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;

  constructor(name = 'Poe Proxy') {
    this.channel = vscode.window.createOutputChannel(name, { log: true });
  }

  trace(message: string): void {
    this.channel.trace(redact(message));
  }

  debug(message: string): void {
    this.channel.debug(redact(message));
  }

  info(message: string): void {
    this.channel.info(redact(message));
  }

  warn(message: string): void {
    this.channel.warn(redact(message));
  }

  error(message: string): void {
    this.channel.error(redact(message));
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
