/**
 * The status bar item: balance and proxy state at a glance (`$(pulse) Poe 1.23M`), warning/error
 * backgrounds, a Markdown tooltip with the base URL, port, last request and cutoff, and a click that
 * opens the command menu. Refreshed on state/balance/key changes, after each request, and on a timer.
 */
import * as vscode from 'vscode';
import { formatPoints } from '../core/footer';
import type { BudgetLimits, SpendTracker } from '../core/budget';
import type { LedgerEntry } from '../core/ledger';
import type { BalanceService } from './balance';
import type { Config } from './config';
import type { KeyStore } from './keyStore';
import type { ProxyController } from './proxyController';

/** The balance is fetched again this often while VS Code is open. */
export const BALANCE_REFRESH_MS = 5 * 60_000;

export type DisplayState = 'no-key' | 'starting' | 'running' | 'paused' | 'external' | 'stopped' | 'error';

/** 1234567 → "1.23M", 12345 → "12.3k", 999 → "999". */
export function compactPoints(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1_000_000) return formatPoints(n);
  if (abs >= 10_000) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  return Math.round(n).toLocaleString('en-US');
}

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly subs: vscode.Disposable[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private display: DisplayState = 'stopped';
  private firstRender: ReturnType<typeof setImmediate> | undefined;

  constructor(
    private readonly controller: ProxyController,
    private readonly balance: BalanceService,
    private readonly keys: KeyStore,
    private readonly config: Config,
  ) {
    this.item = vscode.window.createStatusBarItem('poeProxy.status', vscode.StatusBarAlignment.Right, 100);
    this.subs.push(
      controller.onDidChangeState(() => this.update()),
      controller.onDidFinishRequest(() => this.update()),
      controller.onDidCorrectPoints(() => this.update()),
      balance.onDidChange(() => this.update()),
      keys.onDidChange(() => this.update()),
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
    if (s.kind === 'external') return 'external';
    const cutoff = this.config.base.pointsCutoff;
    const b = this.balance.balance;
    if (cutoff > 0 && b !== undefined && b < cutoff) return 'paused';
    return 'running';
  }

  update(): void {
    const state = this.computeState();
    this.display = state;
    const b = this.balance.balance;
    const amount = b === undefined ? '' : ` ${compactPoints(b)}`;
    const icon: Record<DisplayState, string> = {
      'no-key': '$(key)',
      starting: '$(sync~spin)',
      running: '$(pulse)',
      paused: '$(debug-pause)',
      external: '$(radio-tower)',
      stopped: '$(circle-slash)',
      error: '$(error)',
    };
    const suffix: Partial<Record<DisplayState, string>> = { 'no-key': ': set key', stopped: amount ? amount : ' (stopped)', error: ' error' };
    this.item.text = `${icon[state]} Poe${suffix[state] ?? amount}`;
    this.item.backgroundColor =
      state === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : state === 'no-key' || state === 'paused'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.item.tooltip = this.tooltip(state);
    this.item.accessibilityInformation = { label: `Poe proxy: ${describe(state)}${b === undefined ? '' : `, balance ${formatPoints(b)} points`}` };
  }

  private tooltip(state: DisplayState): vscode.MarkdownString {
    const s = this.controller.state;
    const cfg = this.config.base;
    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = { enabledCommands: ['poeProxy.setApiKey', 'poeProxy.start', 'poeProxy.showLogs', 'poeProxy.showHistory', 'poeProxy.copyBaseUrl', 'poeProxy.changePort'] };
    md.appendMarkdown(`**Poe Proxy** — ${describe(state)}\n\n`);
    if (s.url) {
      md.appendMarkdown(`Base URL: \`${s.url}/v1\`  \n`);
      md.appendMarkdown(`Port: ${s.port ?? cfg.port}${state === 'external' ? ' (served by another VS Code window)' : ''}  \n`);
    } else {
      md.appendMarkdown(`Port: ${cfg.port}  \n`);
    }
    const b = this.balance.balance;
    md.appendMarkdown(`Balance: ${b === undefined ? 'unknown' : `${formatPoints(b)} points`}  \n`);
    md.appendMarkdown(`Cutoff: ${cfg.pointsCutoff > 0 ? `${formatPoints(cfg.pointsCutoff)} points${state === 'paused' ? ' — **paused**: requests are answered without calling Poe' : ''}` : 'off'}  \n`);
    const spend = this.controller.server?.spend;
    if (spend) md.appendMarkdown(`${spendLine(spend, cfg)}  \n`);
    const last = this.controller.lastRequest;
    if (last) md.appendMarkdown(`Last request: ${describeEntry(last)}  \n`);
    if (state === 'error' && s.message) md.appendMarkdown(`\n$(error) ${escapeMd(s.message)}\n`);
    md.appendMarkdown('\n');
    if (state === 'no-key') md.appendMarkdown('[Set API Key](command:poeProxy.setApiKey) · ');
    if (state === 'stopped' || state === 'error') md.appendMarkdown('[Start](command:poeProxy.start) · ');
    if (s.url) md.appendMarkdown('[Copy Base URL](command:poeProxy.copyBaseUrl) · ');
    md.appendMarkdown('[Cost History](command:poeProxy.showHistory) · [Logs](command:poeProxy.showLogs)');
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
  }
}

/** "Spent today: 1,234 of 5,000 (25%) · this month: …", budgets shown only when they are on. */
export function spendLine(spend: SpendTracker, cfg: BudgetLimits): string {
  const { today, month } = spend.spent();
  const part = (spent: number, budget: number): string => (budget > 0 ? `${formatPoints(spent)} of ${formatPoints(budget)} (${Math.floor((spent / budget) * 100)}%)` : formatPoints(spent));
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
