/**
 * The core Logger on top of one LogOutputChannel ("Poe Proxy"). Every line goes through `redact`, so a
 * registered secret (Poe key, access key) never reaches the channel. The level is VS Code's own
 * ("Developer: Set Log Level…" or the gear in the Output view).
 */
import * as vscode from 'vscode';
import { logText, type Logger } from '../core/log';

export class ChannelLogger implements Logger, vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;

  constructor(name = 'Poe Proxy') {
    this.channel = vscode.window.createOutputChannel(name, { log: true });
  }

  trace(message: string): void {
    this.channel.trace(logText(message));
  }

  debug(message: string): void {
    this.channel.debug(logText(message));
  }

  info(message: string): void {
    this.channel.info(logText(message));
  }

  warn(message: string): void {
    this.channel.warn(logText(message));
  }

  error(message: string): void {
    this.channel.error(logText(message));
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
