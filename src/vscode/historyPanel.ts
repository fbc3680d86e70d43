/**
 * The cost-history webview panel: a table of ledger entries, totals per day and per model, a chart of
 * points per day, filters, CSV export and live updates.
 *
 * - One panel at a time (`show` reveals it when open); restored after a window reload through
 *   `registerHistorySerializer`.
 * - `retainContextWhenHidden: false`: the webview script keeps its filters, sort and scroll position
 *   with `setState` and asks for its data again (`ready`) each time it starts.
 * - The webview is untrusted: every incoming message goes through `isFromWebview`; it can only ask
 *   for ledger data (which never holds prompt text) and for an export to a file the user picks.
 * - Live updates are incremental (`append`), sent only while the webview is ready.
 * - After an upgrade or a time-zone change the ledger answers before older months are counted
 *   (`pending`); as it counts them (`onDidIndex`) the panel sends new totals (`totals`), keeping the rows.
 */
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import * as vscode from 'vscode';
import { Ledger, LedgerEntry, LedgerOverview, localDay } from '../core/store/ledger';
import { exportFileName, formatNumber, requestCount } from '../shared/historyModel';
import { FromWebview, HistoryFilter, isFromWebview, NextStep, PAGE_SIZE, ToWebview } from '../shared/historyProtocol';
import { clampRows, exportHistoryCsv, hostDay, loadHistory, loadOlder } from './historyData';

const NEXT_STEP_COMMANDS: Record<NextStep, string> = {
  copyBaseUrl: 'poeProxy.copyBaseUrl',
  configureClient: 'poeProxy.configureClient',
  walkthrough: 'poeProxy.openWalkthrough',
};
import { escapeAttr as attr, HISTORY_TITLE as TITLE, renderHistoryDocument } from './historyHtml';

export class HistoryPanel implements vscode.Disposable {
  static readonly viewType = 'poeProxy.history';
  private static current: HistoryPanel | undefined;

  /** Opens the panel, or reveals it when already open (switching it to `ledger` if that changed). */
  static show(extensionUri: vscode.Uri, ledger: Ledger): HistoryPanel {
    const column = vscode.window.activeTextEditor?.viewColumn ?? vscode.ViewColumn.One;
    const open = HistoryPanel.current;
    if (open) {
      open.setLedger(ledger);
      open.panel.reveal(column);
      return open;
    }
    // A panel restored while no ledger existed: reuse it instead of opening a second one.
    const orphan = orphanPanel;
    if (orphan) {
      orphanPanel = undefined;
      orphanSubscription?.dispose();
      orphanSubscription = undefined;
      orphan.reveal(column);
      return HistoryPanel.revive(orphan, extensionUri, ledger);
    }
    const panel = vscode.window.createWebviewPanel(HistoryPanel.viewType, TITLE, column, {
      ...webviewOptions(extensionUri),
      retainContextWhenHidden: false,
      enableFindWidget: true,
    });
    return new HistoryPanel(panel, extensionUri, ledger);
  }

  /** Takes over a panel VS Code restored after a reload (see `registerHistorySerializer`). */
  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, ledger: Ledger): HistoryPanel {
    if (HistoryPanel.current && HistoryPanel.current.panel !== panel) HistoryPanel.current.dispose();
    return new HistoryPanel(panel, extensionUri, ledger);
  }

  /** The open panel, if any (for tests and commands). */
  static get instance(): HistoryPanel | undefined {
    return HistoryPanel.current;
  }

  private readonly disposables: vscode.Disposable[] = [];
  private appendSubscription: { dispose(): void } | undefined;
  private correctSubscription: { dispose(): void } | undefined;
  private indexSubscription: { dispose(): void } | undefined;
  /** The filter of the webview's last `ready`/`setFilter` (what new totals are computed for). */
  private filter: HistoryFilter | undefined;
  /** New totals are being read; `totalsAgain` asks for another read when it is done (counts coalesce). */
  private totalsRunning = false;
  private totalsAgain = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The script said `ready` and has not been torn down since (hidden panels lose their script). */
  private ready = false;
  private exporting = false;
  private disposed = false;

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private ledger: Ledger,
  ) {
    HistoryPanel.current = this;
    panel.title = TITLE;
    panel.iconPath = {
      light: vscode.Uri.joinPath(extensionUri, 'media', 'history-light.svg'),
      dark: vscode.Uri.joinPath(extensionUri, 'media', 'history-dark.svg'),
    };
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = this.html(panel.webview);
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
      }),
    );
    this.subscribe();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (HistoryPanel.current === this) HistoryPanel.current = undefined;
    this.appendSubscription?.dispose();
    this.correctSubscription?.dispose();
    this.indexSubscription?.dispose();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.appendSubscription = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private setLedger(ledger: Ledger): void {
    if (ledger === this.ledger) return;
    this.ledger = ledger;
    this.subscribe();
    if (this.ready) this.post({ type: 'refresh' });
  }

  private subscribe(): void {
    this.appendSubscription?.dispose();
    this.appendSubscription = this.ledger.onDidAppend((entry) => this.onAppend(entry));
    this.correctSubscription?.dispose();
    // A correction changes a shown row and the totals: reload (at most once a second for a burst).
    this.correctSubscription = this.ledger.onDidCorrect(() => {
      if (!this.ready || this.disposed || this.refreshTimer) return;
      this.refreshTimer = setTimeout(() => {
        this.refreshTimer = undefined;
        if (this.ready && !this.disposed) this.post({ type: 'refresh' });
      }, 1_000);
    });
    this.indexSubscription?.dispose();
    this.indexSubscription = this.ledger.onDidIndex(() => void this.sendTotals());
  }

  /** New totals for the webview's filter, after the ledger counted another month (the rows stay as they are). */
  private async sendTotals(): Promise<void> {
    if (this.totalsRunning) {
      this.totalsAgain = true;
      return;
    }
    this.totalsRunning = true;
    try {
      do {
        this.totalsAgain = false;
        const filter = this.filter;
        if (!this.ready || this.disposed || !filter) return;
        const o = await this.ledger.overview(filter);
        // No await between the read and the post (see `init`): appends emitted later follow it.
        this.post({ type: 'totals', filter, ...overviewFields(o) });
      } while (this.totalsAgain);
    } catch (err) {
      this.post({ type: 'error', message: describe(err) });
    } finally {
      this.totalsRunning = false;
    }
  }

  private onAppend(entry: LedgerEntry): void {
    if (!this.ready || this.disposed) return;
    this.post({ type: 'append', entry, day: hostDay(entry) });
  }

  private post(msg: ToWebview): void {
    if (this.disposed) return;
    void Promise.resolve(this.panel.webview.postMessage(msg)).catch(() => undefined);
  }

  private async onMessage(raw: unknown): Promise<void> {
    if (this.disposed || !isFromWebview(raw)) return; // never trust the webview
    const msg: FromWebview = raw;
    const ledger = this.ledger;
    try {
      switch (msg.type) {
        case 'ready':
        case 'setFilter': {
          const filter = copyFilter(msg.filter);
          const rows = msg.type === 'ready' ? clampRows(msg.rows) : PAGE_SIZE;
          // No await between the read and the post: an append emitted after the read reaches the
          // webview after this answer, one emitted before it is part of it.
          this.filter = filter;
          const snap = await loadHistory(ledger, filter, rows);
          if (msg.type === 'ready') this.ready = true;
          this.post({
            type: 'init',
            requestId: msg.requestId,
            filter,
            entries: snap.entries,
            hasMore: snap.hasMore,
            ...overviewFields(snap),
          });
          // The count may have ended while this was read (its event then found the webview not ready yet).
          if (snap.pending) void this.sendTotals();
          return;
        }
        case 'loadMore': {
          const page = await loadOlder(ledger, copyFilter(msg.filter), { time: msg.before.time, id: msg.before.id });
          this.post({ type: 'more', requestId: msg.requestId, entries: page.entries, hasMore: page.hasMore });
          return;
        }
        case 'requestExport':
          await this.exportCsv(copyFilter(msg.filter));
          return;
        case 'nextStep':
          // A fixed command per step: the webview cannot name a command itself.
          await vscode.commands.executeCommand(NEXT_STEP_COMMANDS[msg.step]);
          return;
      }
    } catch (err) {
      this.post({ type: 'error', message: describe(err) });
    }
  }

  private async exportCsv(filter: HistoryFilter): Promise<void> {
    if (this.exporting) {
      this.post({ type: 'exportResult', ok: false, error: 'An export is already in progress.' });
      return;
    }
    this.exporting = true;
    try {
      const base = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir());
      const target = await vscode.window.showSaveDialog({
        title: 'Export Poe cost history as CSV',
        saveLabel: 'Export',
        defaultUri: vscode.Uri.joinPath(base, exportFileName(filter, localDay(new Date()))),
        filters: { 'CSV files': ['csv'] },
      });
      if (!target) {
        this.post({ type: 'exportResult', ok: false, cancelled: true });
        return;
      }
      if (target.scheme !== 'file') throw new Error('Export to a local file (this window cannot stream to a remote one).');
      const count = await exportWithProgress(this.ledger, filter, target);
      if (count === undefined) {
        this.post({ type: 'exportResult', ok: false, cancelled: true });
        return;
      }
      this.post({ type: 'exportResult', ok: true, path: target.fsPath, count });
      void offerExported(target, count);
    } catch (err) {
      this.post({ type: 'exportResult', ok: false, error: describe(err) });
    } finally {
      this.exporting = false;
    }
  }

  private html(webview: vscode.Webview): string {
    return historyHtml(webview, this.extensionUri);
  }
}

/**
 * Exports with a notification that counts the rows written against those the index expects (a year
 * takes seconds) and can cancel; resolves undefined when the user cancelled (nothing is left behind).
 */
async function exportWithProgress(ledger: Ledger, filter: HistoryFilter, target: vscode.Uri): Promise<number | undefined> {
  const name = fileName(target);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Poe: exporting the cost history to ${name}`, cancellable: true },
    async (progress, token) => {
      const expected = (await ledger.query(filter)).totals.requests;
      const abort = new AbortController();
      const cancelled = token.onCancellationRequested(() => abort.abort());
      let shown = 0;
      try {
        return await exportHistoryCsv(ledger, filter, target.fsPath, {
          signal: abort.signal,
          onRows: (rows) => {
            if (expected <= 0) return;
            const percent = Math.min(100, (100 * rows) / expected);
            if (percent - shown < 1) return; // at most a hundred updates
            progress.report({ increment: percent - shown, message: `${formatNumber(rows)} of ${formatNumber(expected)} requests` });
            shown = percent;
          },
        });
      } catch (err) {
        if (abort.signal.aborted) return undefined;
        throw err;
      } finally {
        cancelled.dispose();
      }
    },
  );
}

/** What `init` and `totals` carry of the ledger's overview (only those fields: the snapshot also holds rows). */
function overviewFields(o: LedgerOverview): LedgerOverview {
  return {
    summary: o.summary,
    models: o.models,
    clients: o.clients,
    refused: o.refused,
    refusedTotal: o.refusedTotal,
    ...(o.pending ? { pending: o.pending } : {}),
  };
}

/** The last segment of `uri`'s path (what the notifications name). */
function fileName(uri: vscode.Uri): string {
  return uri.path.split('/').pop() ?? uri.path;
}

/** After an export: open the file, or show it in the file manager (the Explorer when it is in the workspace). */
async function offerExported(file: vscode.Uri, count: number): Promise<void> {
  const inWorkspace = vscode.workspace.getWorkspaceFolder(file) !== undefined;
  const reveal = inWorkspace ? 'Reveal in Explorer' : 'Reveal in File Manager';
  const name = fileName(file);
  const picked = await vscode.window.showInformationMessage(`Poe: exported ${requestCount(count)} to ${name}.`, 'Open', reveal);
  if (picked === 'Open') await vscode.window.showTextDocument(file, { preview: false });
  else if (picked === reveal) await vscode.commands.executeCommand(inWorkspace ? 'revealInExplorer' : 'revealFileInOS', file);
}

/** A restored panel waiting for a ledger (the extension had none when VS Code restored it). */
let orphanPanel: vscode.WebviewPanel | undefined;
let orphanSubscription: vscode.Disposable | undefined;

/**
 * Restores the panel after a window reload. `getLedger` is asked at restore time; without a ledger
 * the panel shows a short notice and is taken over by the next `HistoryPanel.show`.
 */
export function registerHistorySerializer(context: vscode.ExtensionContext, getLedger: () => Ledger | undefined): vscode.Disposable {
  const registration = vscode.window.registerWebviewPanelSerializer(HistoryPanel.viewType, {
    async deserializeWebviewPanel(panel: vscode.WebviewPanel, _state: unknown): Promise<void> {
      // `_state` is what the script saved with setState; the script reads it back itself.
      const ledger = getLedger();
      if (ledger) {
        HistoryPanel.revive(panel, context.extensionUri, ledger);
        return;
      }
      panel.webview.options = { enableScripts: false, localResourceRoots: [mediaRoot(context.extensionUri)] };
      panel.webview.html = unavailableHtml(panel.webview, context.extensionUri);
      orphanSubscription?.dispose();
      orphanPanel = panel;
      orphanSubscription = panel.onDidDispose(() => {
        if (orphanPanel === panel) orphanPanel = undefined;
      });
    },
  });
  context.subscriptions.push(registration);
  return registration;
}

function mediaRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'media');
}

/** The built webview script's folder (esbuild bundles src/webview/history.ts to dist/webview/history.js). */
function scriptRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'dist', 'webview');
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, enableCommandUris: false, localResourceRoots: [mediaRoot(extensionUri), scriptRoot(extensionUri)] };
}

function copyFilter(f: HistoryFilter): HistoryFilter {
  return { model: f.model, client: f.client ?? null, from: f.from, to: f.to };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function nonce(): string {
  return crypto.randomBytes(18).toString('base64');
}

/** The panel's HTML: static skeleton with the DOM ids the script (and the e2e tests) rely on. */
export function historyHtml(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const n = nonce();
  const script = webview.asWebviewUri(vscode.Uri.joinPath(scriptRoot(extensionUri), 'history.js')).toString();
  const style = webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot(extensionUri), 'history.css')).toString();
  const csp = `default-src 'none'; style-src ${webview.cspSource}; script-src 'nonce-${n}'; img-src ${webview.cspSource} data:;`;
  return renderHistoryDocument({ csp, nonce: n, scriptUri: script, styleUri: style });
}

function unavailableHtml(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const style = webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot(extensionUri), 'history.css')).toString();
  const csp = `default-src 'none'; style-src ${webview.cspSource};`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">
<link rel="stylesheet" href="${attr(style)}">
<title>${TITLE}</title>
</head>
<body>
<p class="muted unavailable">The cost history is not available yet: the proxy's ledger is not running. Open the history again once the proxy has started.</p>
</body>
</html>`;
}
