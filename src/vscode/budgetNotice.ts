/**
 * One VS Code notification when a points budget reaches 80% (per budget and period: once today for the
 * daily one, once this month for the monthly one), with a button to the setting that raises it.
 */
import * as vscode from 'vscode';
import { budgetWarningText } from '../core/store/budget';
import { formatPoints } from '../core/exchange/footer';
import { localDay } from '../core/store/ledger';
import type { Config } from './config';
import type { ProxyController } from './proxyController';

export function registerBudgetNotice(controller: ProxyController, config: Config): vscode.Disposable {
  const shown = new Set<string>();
  const check = (): void => {
    const spend = controller.server?.engine.spend;
    if (!spend) return;
    const today = localDay(new Date());
    for (const s of spend.nearlyExhausted(config.base)) {
      const key = `${s.period}:${s.period === 'daily' ? today : today.slice(0, 7)}`;
      if (shown.has(key)) continue;
      shown.add(key);
      const setting = s.period === 'daily' ? 'poeProxy.pointsBudgetDaily' : 'poeProxy.pointsBudgetMonthly';
      void vscode.window.showWarningMessage(`Poe: ${budgetWarningText(s, formatPoints)}`, 'Open Setting').then((pick) => {
        if (pick) void vscode.commands.executeCommand('workbench.action.openSettings', setting);
      });
    }
  };
  const subs = [controller.onDidFinishRequest(check), controller.onDidCorrectPoints(check)];
  return { dispose: () => subs.forEach((d) => d.dispose()) };
}
