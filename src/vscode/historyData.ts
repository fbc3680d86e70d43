/**
 * Host-side data for the cost-history webview: the ledger's view, pages and CSV export for a
 * `HistoryFilter`. The ledger answers totals from its index and reads only the rows a page needs, so
 * a year of history costs neither seconds nor memory here. No `vscode` import (unit-testable).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { finished } from 'node:stream/promises';
import { dayOfTime, Ledger, LedgerEntry, LedgerPage, LedgerView } from '../core/store/ledger';
import { EntryCursor, HistoryFilter, MAX_RESTORE_ROWS, PAGE_SIZE } from '../shared/historyProtocol';

/** Host-local day of an entry, '' when its time is unparsable (same rule as the ledger's index). */
export function hostDay(e: LedgerEntry): string {
  return dayOfTime(e.time);
}

export type HistorySnapshot = LedgerView;

/** Rows to send for a `ready` that asked for `rows` (restored depth). */
export function clampRows(rows: number): number {
  return Math.min(MAX_RESTORE_ROWS, Math.max(PAGE_SIZE, Math.floor(Number.isFinite(rows) ? rows : 0)));
}

/** Newest `rows` entries matching `filter`, the totals of all matching entries, every model and the refusals. */
export function loadHistory(ledger: Ledger, filter: HistoryFilter, rows: number = PAGE_SIZE): Promise<HistorySnapshot> {
  return ledger.view(filter, rows);
}

/** The page of matching entries just older than `before`. */
export function loadOlder(ledger: Ledger, filter: HistoryFilter, before: EntryCursor, size: number = PAGE_SIZE): Promise<LedgerPage> {
  return ledger.pageBefore(filter, before, size);
}

/**
 * Streams the CSV of every entry matching `filter` (oldest first) into `file` through a temporary
 * file beside it, so a failed or cancelled export never leaves half a file under the chosen name.
 * `onRows` hears the rows written so far; an aborted `signal` cancels (rejects with its reason).
 */
export async function exportHistoryCsv(
  ledger: Ledger,
  filter: HistoryFilter,
  file: string,
  opts: { signal?: AbortSignal; onRows?: (rows: number) => void } = {},
): Promise<number> {
  const tmp = `${file}.${process.pid}.part`;
  const out = createWriteStream(tmp);
  try {
    // The part is created before the ledger is read: a folder that is gone or read-only fails here.
    // Unheard, that error was thrown in the extension host and the export waited for a 'drain' that
    // never came (the notification spun on, the panel refused every later export).
    await once(out, 'open');
    const count = await ledger.exportCsv(filter, out, opts);
    out.end();
    await finished(out);
    await fsp.rename(tmp, file);
    return count;
  } catch (err) {
    // A write still in flight fails once the stream is destroyed; that is this same failure, and
    // without a listener it would be thrown in the extension host.
    out.on('error', () => undefined);
    out.destroy();
    await finished(out).catch(() => undefined); // closed before the part is removed
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
