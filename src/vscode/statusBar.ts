/**
 * The status bar item: balance and proxy state at a glance (`$(pulse) Poe 1.23M`), warning/error
 * backgrounds, a Markdown tooltip with the base URL, port, last request, cutoff, why Poe cannot be used
 * (key rejected, unreachable) and the actions that fix it, and a click that opens the command menu.
 * Refreshed on state/balance/key changes, after each request, and on a timer.
 */
import * as vscode from 'vscode';
import { formatPoints } from '../core/exchange/footer';
import type { BudgetLimits, SpendTracker } from '../core/store/budget';
import type { LedgerEntry } from '../core/store/ledger';
import type { BalanceService } from './balance';
import type { Config } from './config';
import type { KeyStore } from './keyStore';
import { ACTIONS, actionLink, type FixAction, type Notifier } from './notify';
import type { ErrorFix, ProxyController } from './proxyController';

/** The balance is fetched again this often while VS Code is open. */
export const BALANCE_REFRESH_MS = 5 * 60_000;

export type DisplayState = 'no-key' | 'starting' | 'running' | 'paused' | 'external' | 'stopped' | 'error' | 'key-rejected' | 'offline';

/** 1234567 → "1.23M", 12345 → "12.3k", 999 → "999". */
export function compactPoints(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1_000_000) return formatPoints(n);
  if (abs >= 10_000) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  return Math.round(n).toLocaleString('en-US');
}

const ICONS: Record<DisplayState, string> = {
  'no-key': '$(key)',
  starting: '$(sync~spin)',
  running: '$(pulse)',
  paused: '$(debug-pause)',
  external: '$(radio-tower)',
  stopped: '$(circle-slash)',
  error: '$(error)',
  'key-rejected': '$(error)',
  offline: '$(debug-disconnect)',
};

/** What the user can do in each state, first the one that fixes it (shown in the tooltip). */
export function actionsFor(state: DisplayState, fix?: ErrorFix): FixAction[] {
  switch (state) {
    case 'no-key':
      return [ACTIONS.setKey, ACTIONS.getKey];
    case 'key-rejected':
      return [ACTIONS.setKey, ACTIONS.getKey, ACTIONS.retry];
    case 'offline':
      return [ACTIONS.retry, ACTIONS.baseUrlSetting, ACTIONS.logs];
    case 'paused':
      return [ACTIONS.cutoffSetting, ACTIONS.retry];
    case 'error':
      return fix === 'port' ? [ACTIONS.anotherPort, ACTIONS.start] : fix === 'models' ? [ACTIONS.modelsFile, ACTIONS.start] : [ACTIONS.start, ACTIONS.logs];
    case 'stopped':
      return [ACTIONS.start];
    default:
      return [];
  }
}

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly subs: vscode.Disposable[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private display: DisplayState = 'stopped';
  private firstRender: ReturnType<typeof setImmediate> | undefined;
  /** A request was refused for lack of a key and the user was told (once until the key changes). */
  private noKeyAnnounced = false;

  constructor(
    private readonly controller: ProxyController,
    private readonly balance: BalanceService,
    private readonly keys: KeyStore,
    private readonly config: Config,
    private readonly notifier: Notifier,
  ) {
    this.item = vscode.window.createStatusBarItem('poeProxy.status', vscode.StatusBarAlignment.Right, 100);
    this.subs.push(
      controller.onDidChangeState(() => this.update()),
      controller.onDidFinishRequest((entry) => {
        if (!this.keys.poeKey && entry.httpStatus === 401) this.announceNoKey(entry);
        // Poe refused the key or could not be reached for a client: check now rather than at the next timer.
        else if (entry.httpStatus === 401 || entry.httpStatus === 502) void this.balance.refresh(true);
        this.update();
      }),
      controller.onDidCorrectPoints(() => this.update()),
      balance.onDidChange(() => this.update()),
      balance.onDidChangeProblem(() => this.update()),
      keys.onDidChange(() => {
        this.noKeyAnnounced = false;
        this.update();
      }),
      config.onDidChange(() => this.update()),
    );
    this.timer = setInterval(() => {
      if (this.keys.poeKey) void this.balance.refresh(true);
    }, BALANCE_REFRESH_MS);
    this.timer.unref?.();
    // The first render (command, Markdown tooltip: ~a third of activate() in the bench's profile) runs on
    // the next turn, after activate() has returned.
    this.firstRender = setImmediate(() => {
      this.firstRender = undefined;
      this.item.name = 'Poe Proxy';
      this.item.command = 'poeProxy.showMenu';
      this.update();
      this.item.show();
    });
  }

  /** What the item shows now (tests read it). */
  get state(): DisplayState {
    return this.display;
  }

  private computeState(): DisplayState {
    const s = this.controller.state;
    if (s.kind === 'error') return 'error';
    if (!this.keys.poeKey) return 'no-key';
    if (s.kind === 'starting') return 'starting';
    if (s.kind === 'stopped') return 'stopped';
    const problem = this.balance.problem?.kind;
    if (problem === 'key-rejected') return 'key-rejected';
    if (problem === 'unreachable') return 'offline';
    if (s.kind === 'external') return this.isPaused() ? 'paused' : 'external';
    return this.isPaused() ? 'paused' : 'running';
  }

  private isPaused(): boolean {
    const cutoff = this.config.base.pointsCutoff;
    const b = this.balance.balance;
    return cutoff > 0 && b !== undefined && b < cutoff;
  }

  update(): void {
    const state = this.computeState();
    const previous = this.display;
    this.display = state;
    const b = this.balance.balance;
    const amount = b === undefined ? '' : ` ${compactPoints(b)}`;
    const fix = this.controller.state.fix;
    const suffix: Partial<Record<DisplayState, string>> = {
      'no-key': ': set key',
      stopped: amount ? amount : ' (stopped)',
      error: fix === 'port' ? ': port in use' : ' error',
      'key-rejected': ': key rejected',
      offline: ': offline',
    };
    this.item.text = `${ICONS[state]} Poe${suffix[state] ?? amount}`;
    this.item.backgroundColor =
      state === 'error' || state === 'key-rejected'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : state === 'no-key' || state === 'paused' || state === 'offline'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.item.tooltip = this.tooltip(state);
    this.item.accessibilityInformation = { label: `Poe proxy: ${describe(state)}${b === undefined ? '' : `, balance ${formatPoints(b)} points`}` };
    if (state === 'paused' && previous !== 'paused') this.announcePause(b);
  }

  /** A tool's request was refused because no key is set: say so once in the editor, not once per request. */
  private announceNoKey(entry: LedgerEntry): void {
    if (this.noKeyAnnounced) return;
    this.noKeyAnnounced = true;
    void this.notifier.show(
      'warning',
      `Poe proxy: a request${entry.model ? ` for ${entry.model}` : ''} was refused because no Poe API key is set. Requests fail until you set one.`,
      ACTIONS.setKey,
      ACTIONS.getKey,
    );
  }

  /** Agents get the paused answer silently: say it once in the editor when the pause starts. */
  private announcePause(balance: number | undefined): void {
    const cutoff = this.config.base.pointsCutoff;
    void this.notifier.show(
      'warning',
      `Poe proxy paused: your balance (${formatPoints(balance ?? 0)} points) is below the cutoff of ${formatPoints(cutoff)}. Requests are answered with a pause message and do not reach Poe until the balance is above it or you lower the cutoff.`,
      ACTIONS.cutoffSetting,
      ACTIONS.retry,
    );
  }

  private tooltip(state: DisplayState): vscode.MarkdownString {
    const s = this.controller.state;
    const cfg = this.config.base;
    const actions = actionsFor(state, s.fix);
    const md = new vscode.MarkdownString(undefined, true);
    const commands = new Set<string>(['poeProxy.showLogs', 'poeProxy.showHistory', 'poeProxy.copyBaseUrl']);
    for (const a of actions) if (a.command) commands.add(a.command);
    md.isTrusted = { enabledCommands: [...commands] };
    md.appendMarkdown(`**Poe Proxy** — ${describe(state)}\n\n`);
    const problem = this.balance.problem;
    if ((state === 'key-rejected' || state === 'offline') && problem) md.appendMarkdown(`$(warning) ${escapeMd(problem.message)}\n\n`);
    if (state === 'error' && s.message) md.appendMarkdown(`$(error) ${escapeMd(s.message)}\n\n`);
    if (state === 'stopped' && this.controller.isStoppedEverywhere)
      md.appendMarkdown('Stopped in every VS Code window: nothing reaches Poe through the proxy until you Start it again (from any window).\n\n');
    if (s.url) {
      md.appendMarkdown(`Base URL: \`${s.url}/v1\`  \n`);
      md.appendMarkdown(`Port: ${s.port ?? cfg.port}${state === 'external' ? ' (served by another VS Code window)' : ''}  \n`);
    } else {
      md.appendMarkdown(`Port: ${cfg.port}  \n`);
    }
    const b = this.balance.balance;
    const at = this.balance.lastFetchedAt;
    const asOf = problem && at !== undefined ? ` — last fetched ${new Date(at).toLocaleString()}` : '';
    md.appendMarkdown(`Balance: ${b === undefined ? 'unknown' : `${formatPoints(b)} points${asOf}`}  \n`);
    if (problem && !(state === 'key-rejected' || state === 'offline')) md.appendMarkdown(`$(warning) Balance not updated: ${escapeMd(problem.message)}  \n`);
    md.appendMarkdown(
      `Cutoff: ${cfg.pointsCutoff > 0 ? `${formatPoints(cfg.pointsCutoff)} points${state === 'paused' ? ' — **paused**: requests are answered without calling Poe' : ''}` : 'off'}  \n`,
    );
    const spend = this.controller.server?.engine.spend;
    if (spend) md.appendMarkdown(`${spendLine(spend, cfg)}  \n`);
    const last = this.controller.lastRequest;
    if (last) md.appendMarkdown(`Last request: ${describeEntry(last)}  \n`);
    md.appendMarkdown('\n');
    const links = actions.map(actionLink);
    if (s.url) links.push(actionLink(ACTIONS.copyBaseUrl));
    links.push('[Cost History](command:poeProxy.showHistory)');
    if (!actions.includes(ACTIONS.logs)) links.push(actionLink(ACTIONS.logs));
    md.appendMarkdown(links.join(' · '));
    return md;
  }

  dispose(): void {
    if (this.firstRender) clearImmediate(this.firstRender);
    clearInterval(this.timer);
    for (const s of this.subs) s.dispose();
    this.item.dispose();
  }
}

export function describe(state: DisplayState): string {
  switch (state) {
    case 'no-key':
      return 'no API key';
    case 'starting':
      return 'starting';
    case 'running':
      return 'running';
    case 'paused':
      return 'paused (balance below the cutoff)';
    case 'external':
      return 'served by another window';
    case 'stopped':
      return 'stopped';
    case 'error':
      return 'error';
    case 'key-rejected':
      return 'key rejected by Poe';
    case 'offline':
      return "can't reach Poe";
  }
}

/** "Spent today: 1,234 of 5,000 (25%) · this month: …", budgets shown only when they are on. */
export function spendLine(spend: SpendTracker, cfg: BudgetLimits): string {
  const { today, month } = spend.spent();
  const part = (spent: number, budget: number): string =>
    budget > 0 ? `${formatPoints(spent)} of ${formatPoints(budget)} (${Math.floor((spent / budget) * 100)}%)` : formatPoints(spent);
  return `Spent today: ${part(today, cfg.pointsBudgetDaily)} · this month: ${part(month, cfg.pointsBudgetMonthly)} points`;
}

export function describeEntry(e: LedgerEntry): string {
  const pts =
    e.points === null
      ? 'cost n/a'
      : `${formatPoints(e.points)} points${e.pointsEstimated ? ' (est.)' : e.replacedEstimate !== undefined ? ` (actual; replaced the estimate ${formatPoints(e.replacedEstimate)})` : ''}`;
  const when = new Date(e.time);
  const time = Number.isNaN(when.getTime()) ? '' : ` at ${when.toLocaleTimeString()}`;
  return `${escapeMd(e.model || '?')} · ${pts} · ${e.status}${time}`;
}

function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
