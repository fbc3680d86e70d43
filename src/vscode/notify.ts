/**
 * Notifications that carry the action each situation needs (Retry, Set API Key, Open setting, …), and a
 * short record of what was shown: the real-host tests read it, since a toast cannot be inspected through
 * the API.
 */
import * as vscode from 'vscode';

/** Something the user can do next: a command (with arguments) or a web page. */
export interface FixAction {
  title: string;
  command?: string;
  args?: unknown[];
  url?: string;
  /** Runs in place of a command (actions that only make sense in a notification). */
  run?: () => unknown;
}

export const GET_KEY_URL = 'https://poe.com/api_key';

/** The actions, by what they fix; the status bar tooltip and the notifications share them. */
export const ACTIONS = {
  retry: { title: 'Retry', command: 'poeProxy.refreshBalance' },
  setKey: { title: 'Set API Key', command: 'poeProxy.setApiKey' },
  getKey: { title: 'Get a Key', url: GET_KEY_URL },
  baseUrlSetting: { title: 'Open Setting (Base URL)', command: 'workbench.action.openSettings', args: ['poeProxy.baseURL'] },
  cutoffSetting: { title: 'Change Cutoff', command: 'workbench.action.openSettings', args: ['poeProxy.pointsCutoff'] },
  anotherPort: { title: 'Use Another Port', command: 'poeProxy.changePort' },
  modelsFile: { title: 'Open Models File', command: 'poeProxy.openModelsFile' },
  start: { title: 'Start', command: 'poeProxy.start' },
  logs: { title: 'Show Logs', command: 'poeProxy.showLogs' },
  copyBaseUrl: { title: 'Copy Base URL', command: 'poeProxy.copyBaseUrl' },
  configureClient: { title: 'Configure a Client…', command: 'poeProxy.configureClient' },
  walkthrough: { title: 'Open Walkthrough', command: 'poeProxy.openWalkthrough' },
} as const satisfies Record<string, FixAction>;

export function runAction(a: FixAction): Thenable<unknown> {
  if (a.run) return Promise.resolve(a.run());
  if (a.url) return vscode.env.openExternal(vscode.Uri.parse(a.url));
  return vscode.commands.executeCommand(a.command!, ...(a.args ?? []));
}

/** A Markdown link that runs the action (command links need the command in `isTrusted.enabledCommands`). */
export function actionLink(a: FixAction): string {
  if (a.url) return `[${a.title}](${a.url})`;
  const query = a.args ? `?${encodeURIComponent(JSON.stringify(a.args))}` : '';
  return `[${a.title}](command:${a.command}${query})`;
}

export interface Notice {
  level: 'info' | 'warning' | 'error';
  message: string;
  actions: string[];
  at: number;
}

const KEPT = 50;

export class Notifier {
  /** The latest notices, oldest first. */
  readonly shown: Notice[] = [];

  /** Shows the notice; resolves with the action picked (already run), if any. */
  async show(level: Notice['level'], message: string, ...actions: FixAction[]): Promise<FixAction | undefined> {
    this.shown.push({ level, message, actions: actions.map((a) => a.title), at: Date.now() });
    if (this.shown.length > KEPT) this.shown.splice(0, this.shown.length - KEPT);
    const titles = actions.map((a) => a.title);
    const picked =
      level === 'error'
        ? await vscode.window.showErrorMessage(message, ...titles)
        : level === 'warning'
          ? await vscode.window.showWarningMessage(message, ...titles)
          : await vscode.window.showInformationMessage(message, ...titles);
    const action = actions.find((a) => a.title === picked);
    if (action) await runAction(action);
    return action;
  }
}
