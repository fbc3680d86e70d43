/**
 * Host-side data for the cost-history webview: reads the ledger and applies a `HistoryFilter`.
 * No `vscode` import, so it is unit-testable with a real `Ledger` in a temp directory.
 */
import { Ledger, LedgerEntry, LedgerSummary, localDay, summarize, toCsv } from '../core/ledger';
import { applyFilter, latestPage, Page, pageBefore } from '../shared/historyModel';
import { EntryCursor, HistoryFilter, MAX_RESTORE_ROWS, PAGE_SIZE } from '../shared/historyProtocol';

/** Host-local day of an entry, '' when its time is unparsable (same rule as `summarize`). */
export function hostDay(e: LedgerEntry): string {
  const t = new Date(e.time);
  return Number.isNaN(t.getTime()) ? '' : localDay(t);
}

export interface HistorySnapshot extends Page {
  summary: LedgerSummary;
  models: string[];
  clients: string[];
}

/** Rows to send for a `ready` that asked for `rows` (restored depth). */
export function clampRows(rows: number): number {
  return Math.min(MAX_RESTORE_ROWS, Math.max(PAGE_SIZE, Math.floor(Number.isFinite(rows) ? rows : 0)));
}

/** Newest `rows` entries matching `filter`, the summary of all matching entries, and every model. */
export async function loadHistory(ledger: Ledger, filter: HistoryFilter, rows: number = PAGE_SIZE): Promise<HistorySnapshot> {
  const all = await ledger.read();
  const models = [...new Set(all.map((e) => e.model))].sort((a, b) => a.localeCompare(b));
  const clients = [...new Set(all.map((e) => e.client))].sort((a, b) => a.localeCompare(b));
  const matching = applyFilter(all, filter, hostDay);
  return { ...latestPage(matching, rows), summary: summarize(matching), models, clients };
}

/** The page of matching entries just older than `before`. */
export async function loadOlder(ledger: Ledger, filter: HistoryFilter, before: EntryCursor, size: number = PAGE_SIZE): Promise<Page> {
  return pageBefore(applyFilter(await ledger.read(), filter, hostDay), before, size);
}

/** CSV (see `toCsv`) of every entry matching `filter`, oldest first. */
export async function historyCsv(ledger: Ledger, filter: HistoryFilter): Promise<{ csv: string; count: number }> {
  const matching = applyFilter(await ledger.read(), filter, hostDay);
  return { csv: toCsv(matching), count: matching.length };
}
