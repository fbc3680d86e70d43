/**
 * The cost-history webview's HTML skeleton. Free of `vscode` values so it can be unit-tested and served
 * outside VS Code for previews. The DOM ids here are relied on by `src/webview/history.ts` and the e2e tests:
 * `#history-table` (rows `tr.entry[data-model]`), `#totals`, `#points-chart`, `#export-csv`,
 * `#filter-model`, `#filter-from`, `#filter-to`, `#clear-filters`, `#load-more`, `#export-status`, `#rows-info`,
 * `#refused` (with `#refused-summary` and `#refused-list`: requests refused before reaching Poe),
 * `#totals-pending` (shown while older months are being counted: the totals are partial).
 */

import { POINTS_KIND_HELP } from '../shared/historyModel';

export const HISTORY_TITLE = 'Poe Cost History';
const TITLE = HISTORY_TITLE;

export function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
const attr = escapeAttr;

export interface HistoryDocumentParts {
  csp: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

/** The HTML document (kept free of `vscode` values so it can be served outside VS Code for previews). */
export function renderHistoryDocument(p: HistoryDocumentParts): string {
  const col = (key: string, label: string, numeric = false): string =>
    `<th scope="col" class="sortable${numeric ? ' num' : ''}" data-col="${key}" data-sort="${key}" aria-sort="none"><button type="button" class="sort-button" data-sort="${key}">${label}<span class="sort-indicator" aria-hidden="true"></span></button></th>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(p.csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(p.styleUri)}">
<title>${TITLE}</title>
</head>
<body>
<header class="toolbar">
  <h1>Poe cost history</h1>
  <form id="filters" class="filters" role="search" aria-label="Filter requests">
    <label for="filter-model">Model</label>
    <select id="filter-model" name="model"><option value="">All models</option></select>
    <label for="filter-client">Client</label>
    <select id="filter-client" name="client"><option value="">All clients</option></select>
    <label for="filter-from">From</label>
    <input id="filter-from" name="from" type="date">
    <label for="filter-to">To</label>
    <input id="filter-to" name="to" type="date">
    <button id="clear-filters" type="button" class="secondary" aria-label="Clear all filters">Clear</button>
  </form>
  <div class="actions">
    <button id="export-csv" type="button" aria-label="Export the filtered requests as CSV">Export CSV…</button>
    <span id="export-status" role="status" aria-live="polite"></span>
  </div>
</header>
<main>
  <section class="overview">
    <section class="panel totals-panel" aria-labelledby="totals-heading">
      <h2 id="totals-heading">Totals</h2>
      <p id="totals-pending" class="counting-note" role="status" aria-live="polite" hidden></p>
      <div id="totals" aria-live="off"><p class="muted">Loading…</p></div>
    </section>
    <section class="panel chart-panel" aria-labelledby="chart-heading">
      <h2 id="chart-heading">Points per day</h2>
      <div id="chart-box" class="chart-box">
        <svg id="points-chart" role="img" aria-labelledby="chart-heading chart-desc" xmlns="http://www.w3.org/2000/svg"><desc id="chart-desc">Bar chart of points spent per day. The same numbers are in the By day table.</desc></svg>
      </div>
    </section>
  </section>
  <section class="panel requests-panel" aria-labelledby="requests-heading">
    <div class="requests-head">
      <h2 id="requests-heading">Requests</h2>
      <span id="rows-info" class="muted"></span>
    </div>
    <details id="refused" class="refused" hidden>
      <summary id="refused-summary"></summary>
      <ul id="refused-list" aria-label="Requests refused before reaching Poe"></ul>
    </details>
    <p id="points-legend" class="muted legend">Points — ${attr(POINTS_KIND_HELP)} A row with a problem opens its reason with the status button.</p>
    <div class="table-scroll" role="region" aria-labelledby="requests-heading" tabindex="0">
    <table id="history-table" aria-labelledby="requests-heading">
      <thead>
        <tr>
          ${col('time', 'Time')}
          ${col('model', 'Model')}
          ${col('tokensIn', 'Tokens in', true)}
          ${col('tokensOut', 'Tokens out', true)}
          ${col('points', 'Points', true)}
          <th scope="col" data-col="kind" title="${attr(POINTS_KIND_HELP)}">Kind</th>
          ${col('balanceAfter', 'Balance after', true)}
          ${col('status', 'Status')}
          ${col('durationMs', 'Duration', true)}
          <th scope="col" data-col="client">Client</th>
        </tr>
      </thead>
      <tbody></tbody>
    </table>
    </div>
    <div class="more">
      <button id="load-more" type="button" class="secondary" hidden>Load older requests</button>
    </div>
  </section>
</main>
<script nonce="${attr(p.nonce)}" src="${attr(p.scriptUri)}"></script>
</body>
</html>`;
}
