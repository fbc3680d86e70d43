/**
 * Script of the cost-history webview (bundled by esbuild to dist/webview/history.js, IIFE, browser; type-checked
 * with the DOM lib and without node types by src/webview/tsconfig.json).
 * Talks to src/vscode/historyPanel.ts through the typed protocol in src/shared/historyProtocol.ts.
 * Renders with DOM APIs only (no innerHTML with data), so ledger text can never become markup.
 */
import type { LedgerSummary, RefusedGroup } from '../core/store/ledgerIndex';
import type { LedgerEntry } from '../core/store/ledgerRecords';
import {
  addToSummary,
  buildChart,
  emptySummary,
  entryDetails,
  entryKey,
  formatCompact,
  formatDuration,
  formatNumber,
  formatShortTime,
  formatTime,
  insertionIndex,
  matchesFilter,
  pointsKind,
  refusedText,
  sortEntries,
  requestCount,
  statusLabel,
} from '../shared/historyModel';
import {
  CountingProgress,
  EMPTY_FILTER,
  EntryCursor,
  FromWebview,
  HistoryFilter,
  HistoryWebviewState,
  isDay,
  isToWebview,
  NextStep,
  parseWebviewState,
  SORT_KEYS,
  SortKey,
  SortState,
  ToWebview,
} from '../shared/historyProtocol';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const SVG_NS = 'http://www.w3.org/2000/svg';
/** Default direction when a column is first sorted: text ascending, numbers and time descending. */
const FIRST_DIR: Record<SortKey, SortState['dir']> = {
  time: 'desc',
  model: 'asc',
  tokensIn: 'desc',
  tokensOut: 'desc',
  points: 'desc',
  balanceAfter: 'desc',
  status: 'asc',
  durationMs: 'desc',
};

// ---- state -------------------------------------------------------------------------------------

const restored = parseWebviewState(vscode.getState());
const state: HistoryWebviewState = restored ?? { filter: { ...EMPTY_FILTER }, sort: { key: 'time', dir: 'desc' }, scrollY: 0, rows: 0 };
/** Loaded entries in file order (oldest first). */
let loaded: LedgerEntry[] = [];
/** `loaded` in display order. */
let shown: LedgerEntry[] = [];
const keys = new Set<string>();
let summary: LedgerSummary = emptySummary();
let refused: RefusedGroup[] = [];
let refusedTotal = 0;
let models: string[] = [];
let clients: string[] = [];
let hasMore = false;
/** Older months the host is still counting: the totals leave them out until a `totals` message without it. */
let counting: CountingProgress | undefined;
let oldest: EntryCursor | undefined;
let nextRequestId = 1;
let pendingInit = -1;
let pendingMore = -1;
/** Scroll position to restore after the first data arrives. */
let scrollToRestore: number | undefined = restored ? restored.scrollY : undefined;

function saveState(): void {
  vscode.setState(state);
}

function send(msg: FromWebview): void {
  vscode.postMessage(msg);
}

// ---- elements ----------------------------------------------------------------------------------

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`history: missing #${id}`);
  return e as T;
}

const modelSelect = el<HTMLSelectElement>('filter-model');
const clientSelect = el<HTMLSelectElement>('filter-client');
const fromInput = el<HTMLInputElement>('filter-from');
const toInput = el<HTMLInputElement>('filter-to');
const clearButton = el<HTMLButtonElement>('clear-filters');
const exportButton = el<HTMLButtonElement>('export-csv');
const exportStatus = el<HTMLElement>('export-status');
const totalsBox = el<HTMLElement>('totals');
const countingNote = el<HTMLElement>('totals-pending');
const chartBox = el<HTMLElement>('chart-box');
const chart = document.getElementById('points-chart') as unknown as SVGSVGElement;
const table = el<HTMLTableElement>('history-table');
const tbody = table.tBodies[0];
const rowsInfo = el<HTMLElement>('rows-info');
const loadMoreButton = el<HTMLButtonElement>('load-more');
const refusedBox = el<HTMLDetailsElement>('refused');
const refusedSummary = el<HTMLElement>('refused-summary');
const refusedList = el<HTMLUListElement>('refused-list');

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string } = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  for (const c of children) e.appendChild(c);
  return e;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- requests ----------------------------------------------------------------------------------

function readFilterControls(): HistoryFilter {
  return {
    model: modelSelect.value || null,
    client: clientSelect.value || null,
    from: isDay(fromInput.value) ? fromInput.value : null,
    to: isDay(toInput.value) ? toInput.value : null,
  };
}

function writeFilterControls(f: HistoryFilter): void {
  ensureModelOption(f.model);
  modelSelect.value = f.model ?? '';
  ensureClientOption(f.client ?? null);
  clientSelect.value = f.client ?? '';
  fromInput.value = f.from ?? '';
  toInput.value = f.to ?? '';
  toInput.min = f.from ?? '';
  fromInput.max = f.to ?? '';
}

function requestData(kind: 'ready' | 'setFilter'): void {
  const requestId = nextRequestId++;
  pendingInit = requestId;
  pendingMore = -1;
  table.setAttribute('aria-busy', 'true');
  if (kind === 'ready') send({ type: 'ready', requestId, filter: state.filter, rows: state.rows });
  else send({ type: 'setFilter', requestId, filter: state.filter });
}

function onFilterChange(): void {
  state.filter = readFilterControls();
  toInput.min = state.filter.from ?? '';
  fromInput.max = state.filter.to ?? '';
  state.rows = 0;
  state.scrollY = 0;
  saveState();
  requestData('setFilter');
}

modelSelect.addEventListener('change', onFilterChange);
clientSelect.addEventListener('change', onFilterChange);
fromInput.addEventListener('change', onFilterChange);
toInput.addEventListener('change', onFilterChange);
el<HTMLFormElement>('filters').addEventListener('submit', (ev) => ev.preventDefault());
clearButton.addEventListener('click', () => {
  writeFilterControls(EMPTY_FILTER);
  onFilterChange();
});

exportButton.addEventListener('click', () => {
  exportButton.disabled = true;
  setStatus('Exporting…', false);
  send({ type: 'requestExport', filter: state.filter });
});

loadMoreButton.addEventListener('click', () => {
  if (!oldest || pendingMore >= 0) return;
  pendingMore = nextRequestId++;
  loadMoreButton.disabled = true;
  loadMoreButton.textContent = 'Loading…';
  send({ type: 'loadMore', requestId: pendingMore, filter: state.filter, before: oldest });
});

for (const button of Array.from(table.querySelectorAll<HTMLButtonElement>('button.sort-button'))) {
  button.addEventListener('click', () => {
    const key = button.dataset.sort as SortKey;
    if (!SORT_KEYS.includes(key)) return;
    state.sort = state.sort.key === key ? { key, dir: state.sort.dir === 'asc' ? 'desc' : 'asc' } : { key, dir: FIRST_DIR[key] };
    saveState();
    shown = sortEntries(loaded, state.sort);
    renderTable();
  });
}

let scrollQueued = false;
window.addEventListener('scroll', () => {
  if (scrollQueued) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    state.scrollY = Math.round(window.scrollY);
    saveState();
  });
});

/** `title`: the whole text, when `text` shortens it (a file's path). */
function setStatus(text: string, error: boolean, title = ''): void {
  exportStatus.textContent = text;
  exportStatus.title = title;
  exportStatus.classList.toggle('error', error);
}

// ---- messages ----------------------------------------------------------------------------------

window.addEventListener('message', (ev: MessageEvent) => {
  const msg: unknown = ev.data;
  if (!isToWebview(msg)) return;
  handle(msg);
});

function handle(msg: ToWebview): void {
  switch (msg.type) {
    case 'init': {
      if (msg.requestId !== pendingInit) return; // an answer to an older filter
      pendingInit = -1;
      loaded = msg.entries;
      keys.clear();
      for (const e of loaded) keys.add(entryKey(e));
      summary = msg.summary;
      refused = msg.refused;
      refusedTotal = msg.refusedTotal;
      models = msg.models;
      clients = msg.clients ?? [];
      renderClientOptions();
      counting = msg.pending;
      hasMore = msg.hasMore;
      oldest = loaded.length > 0 ? { time: loaded[0].time, id: loaded[0].id } : undefined;
      renderModelOptions();
      shown = sortEntries(loaded, state.sort);
      renderAll();
      table.removeAttribute('aria-busy');
      if (scrollToRestore !== undefined) {
        const y = scrollToRestore;
        scrollToRestore = undefined;
        requestAnimationFrame(() => window.scrollTo(0, y));
      }
      return;
    }
    case 'totals': {
      // Totals for another filter, or a reload on its way that brings newer ones: dropped.
      if (pendingInit >= 0 || !sameFilter(msg.filter, state.filter)) return;
      summary = msg.summary;
      refused = msg.refused;
      refusedTotal = msg.refusedTotal;
      counting = msg.pending;
      if (msg.models.join('\u0000') !== models.join('\u0000')) {
        models = msg.models;
        renderModelOptions();
      }
      if (msg.clients.join('\u0000') !== clients.join('\u0000')) {
        clients = msg.clients;
        renderClientOptions();
      }
      renderOverview();
      renderRowsInfo();
      return;
    }
    case 'more': {
      if (msg.requestId !== pendingMore) return;
      pendingMore = -1;
      const fresh = msg.entries.filter((e) => !keys.has(entryKey(e)));
      for (const e of fresh) keys.add(entryKey(e));
      loaded = [...fresh, ...loaded];
      hasMore = msg.hasMore && msg.entries.length > 0;
      if (msg.entries.length > 0) oldest = { time: msg.entries[0].time, id: msg.entries[0].id };
      state.rows = loaded.length;
      saveState();
      shown = sortEntries(loaded, state.sort);
      renderTable();
      return;
    }
    case 'append': {
      const e = msg.entry;
      if (!models.includes(e.model)) {
        models = [...models, e.model].sort((a, b) => a.localeCompare(b));
        renderModelOptions();
      }
      if (!clients.includes(e.client)) {
        clients = [...clients, e.client].sort((a, b) => a.localeCompare(b));
        renderClientOptions();
      }
      if (!matchesFilter(e, msg.day, state.filter) || keys.has(entryKey(e))) return;
      keys.add(entryKey(e));
      loaded.push(e);
      summary = addToSummary(summary, e, msg.day);
      const at = insertionIndex(shown, e, state.sort);
      shown.splice(at, 0, e);
      insertRow(e, at);
      scheduleOverview();
      return;
    }
    case 'exportResult':
      exportButton.disabled = false;
      if (msg.ok) {
        const count = msg.count ?? 0;
        // Short, so the toolbar stays on one row (VS Code's notification names the file); the path is the tooltip.
        const text = `Exported ${requestCount(count)}`;
        setStatus(`${text}.`, false, `${text} to ${msg.path ?? 'the file'}.`);
      } else if (msg.cancelled) setStatus('Export cancelled.', false);
      else setStatus(`Export failed: ${msg.error ?? 'unknown error'}`, true);
      return;
    case 'refresh':
      requestData('setFilter');
      return;
    case 'error':
      table.removeAttribute('aria-busy');
      pendingInit = -1;
      pendingMore = -1;
      exportButton.disabled = false;
      setStatus(`Error: ${msg.message}`, true);
      renderTable();
      return;
  }
}

// ---- rendering ---------------------------------------------------------------------------------

function ensureModelOption(model: string | null): void {
  if (model === null) return;
  if (!Array.from(modelSelect.options).some((o) => o.value === model)) modelSelect.appendChild(new Option(model, model));
}

function ensureClientOption(client: string | null): void {
  if (client === null) return;
  if (!Array.from(clientSelect.options).some((o) => o.value === client)) clientSelect.appendChild(new Option(client, client));
}

function renderClientOptions(): void {
  const keep = state.filter.client ?? null;
  const names = keep !== null && !clients.includes(keep) ? [...clients, keep] : clients;
  clientSelect.replaceChildren(new Option('All clients', ''), ...names.map((c) => new Option(c, c)));
  clientSelect.value = keep ?? '';
}

function renderModelOptions(): void {
  const keep = state.filter.model;
  const options = [new Option('All models', '')];
  const names = keep !== null && !models.includes(keep) ? [...models, keep] : models;
  for (const m of names) options.push(new Option(m, m));
  modelSelect.replaceChildren(...options);
  modelSelect.value = keep ?? '';
}

function renderAll(): void {
  renderTable();
  renderOverview();
}

let overviewQueued = false;
function scheduleOverview(): void {
  if (overviewQueued) return;
  overviewQueued = true;
  requestAnimationFrame(() => {
    overviewQueued = false;
    renderOverview();
    renderRowsInfo();
  });
}

function sameFilter(a: HistoryFilter, b: HistoryFilter): boolean {
  return a.model === b.model && (a.client ?? null) === (b.client ?? null) && a.from === b.from && a.to === b.to;
}

function renderOverview(): void {
  renderCounting();
  renderTotals();
  renderChart();
  renderRefused();
}

/** Requests the proxy answered without calling Poe: counted per minute, shown per day, client and reason. */
function renderRefused(): void {
  refusedBox.hidden = refusedTotal === 0;
  refusedSummary.textContent = `${requestCount(refusedTotal)} refused before reaching Poe (no points spent)`;
  refusedList.replaceChildren(...refused.map((g) => h('li', { className: `refused-${g.reason}`, text: refusedText(g) })));
}

function numCell(tag: 'td' | 'th', text: string): HTMLTableCellElement {
  return h(tag, { className: 'num', text });
}

/** Ids of the rows whose details are open (kept across re-renders, not across reloads). */
const expanded = new Set<string>();

/** Each header cell's `data-col`, so body cells get a `col-<name>` class the narrow layouts hide by. */
function columnClasses(): string[] {
  return Array.from(table.tHead?.rows[0]?.cells ?? []).map((th) => {
    const cls = th.dataset.col ? `col-${th.dataset.col}` : '';
    if (cls) th.classList.add(cls); // the header cell hides with its column
    return cls;
  });
}

function rowFor(e: LedgerEntry): HTMLTableRowElement {
  const tr = h('tr', { className: 'entry' });
  tr.dataset.model = e.model;
  tr.dataset.status = e.status;
  tr.dataset.id = e.id;
  const timeCell = h('th');
  timeCell.scope = 'row';
  // Both formats; the container width decides which one shows (history.css).
  const time = h(
    'time',
    {},
    h('span', { className: 'time-long', text: formatTime(e.time) }),
    h('span', { className: 'time-short', text: formatShortTime(e.time) }),
  );
  time.dateTime = e.time;
  time.title = formatTime(e.time);
  timeCell.appendChild(time);
  const kind = pointsKind(e);
  const kindCell = h('td', {}, h('span', { className: kind === 'est.' ? 'tag tag-est' : kind ? 'tag tag-actual' : '', text: kind || '—' }));
  if (kind === 'est.') kindCell.title = 'Estimated: Poe has not listed this request yet; the proxy books the actual points when it does';
  else if (e.replacedEstimate !== undefined)
    kindCell.title = `Actual points from Poe, booked later; they replaced the estimate of ${formatNumber(e.replacedEstimate)}`;
  const status = h('span', { className: `status status-${e.status}`, text: statusLabel(e.status) });
  const details = entryDetails(e);
  const statusCell = h('td', {}, status);
  statusCell.title = details.join(' · ');
  if (e.status !== 'ok' || e.error) {
    // A problem's reason is one key press away: the status becomes a button that opens a details row.
    const toggle = h('button', { className: 'details-toggle' }, status, h('span', { className: 'chevron', text: expanded.has(e.id) ? '▾' : '▸' }));
    toggle.type = 'button';
    toggle.setAttribute('aria-expanded', String(expanded.has(e.id)));
    toggle.setAttribute('aria-controls', detailsId(e));
    toggle.setAttribute('aria-label', `${statusLabel(e.status)}: show details`);
    toggle.addEventListener('click', () => toggleDetails(e, tr, toggle));
    statusCell.replaceChildren(toggle);
  }
  const modelCell = h('td', { className: 'model', text: e.model });
  modelCell.title = e.model;
  const clientCell = h('td', { className: 'client', text: e.client });
  clientCell.title = e.client;
  const pointsCell = numCell('td', formatNumber(e.points));
  if (kind === 'est.') pointsCell.classList.add('points-est'); // marked "est." when the Kind column is hidden
  tr.append(
    timeCell,
    modelCell,
    numCell('td', formatNumber(e.tokensIn)),
    numCell('td', formatNumber(e.tokensOut)),
    pointsCell,
    kindCell,
    numCell('td', formatNumber(e.balanceAfter)),
    statusCell,
    numCell('td', formatDuration(e.durationMs)),
    clientCell,
  );
  const classes = columnClasses();
  Array.from(tr.cells).forEach((cell, i) => {
    if (classes[i]) cell.classList.add(classes[i]);
  });
  return tr;
}

function detailsId(e: LedgerEntry): string {
  return `details-${e.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** The row under an entry that shows its details (reason, HTTP status, endpoint, retries, client). */
function detailsRow(e: LedgerEntry): HTMLTableRowElement {
  const td = h('td', {}, h('span', { className: 'details-text', text: entryDetails(e).join(' · ') }));
  td.colSpan = table.tHead?.rows[0]?.cells.length ?? 9;
  const tr = h('tr', { className: 'details' }, td);
  tr.id = detailsId(e);
  return tr;
}

function toggleDetails(e: LedgerEntry, row: HTMLTableRowElement, toggle: HTMLButtonElement): void {
  const open = !expanded.has(e.id);
  if (open) expanded.add(e.id);
  else expanded.delete(e.id);
  toggle.setAttribute('aria-expanded', String(open));
  const chevron = toggle.querySelector('.chevron');
  if (chevron) chevron.textContent = open ? '▾' : '▸';
  const next = row.nextElementSibling;
  if (open && !next?.classList.contains('details')) row.after(detailsRow(e));
  else if (!open && next?.classList.contains('details')) next.remove();
}

function emptyRow(): HTMLTableRowElement {
  const text = pendingInit >= 0 ? 'Loading…' : anyFilter() ? 'No requests match these filters.' : 'No requests recorded yet.';
  const td = h('td', { className: 'empty muted', text });
  if (pendingInit < 0 && !anyFilter()) {
    // Nothing sent through the proxy yet: offer the step that gets a tool to use it.
    const step = (label: string, next: NextStep, secondary = true): HTMLButtonElement => {
      const b = h('button', { className: secondary ? 'secondary' : '', text: label });
      b.type = 'button';
      b.dataset.step = next;
      b.addEventListener('click', () => send({ type: 'nextStep', step: next }));
      return b;
    };
    td.append(
      h(
        'span',
        { className: 'next-steps' },
        step('Configure a Client…', 'configureClient', false),
        step('Copy Base URL', 'copyBaseUrl'),
        step('Open Walkthrough', 'walkthrough'),
      ),
    );
  }
  td.colSpan = table.tHead?.rows[0]?.cells.length ?? 9;
  return h('tr', { className: 'placeholder' }, td);
}

function anyFilter(): boolean {
  return state.filter.model !== null || (state.filter.client ?? null) !== null || state.filter.from !== null || state.filter.to !== null;
}

function renderTable(): void {
  for (const th of Array.from(table.querySelectorAll<HTMLTableCellElement>('th[data-sort]'))) {
    const active = th.dataset.sort === state.sort.key;
    th.setAttribute('aria-sort', active ? (state.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none');
    th.classList.toggle('sorted', active);
    const ind = th.querySelector('.sort-indicator');
    if (ind) ind.textContent = active ? (state.sort.dir === 'asc' ? ' ▲' : ' ▼') : '';
  }
  const frag = document.createDocumentFragment();
  if (shown.length === 0) frag.appendChild(emptyRow());
  for (const e of shown) {
    frag.appendChild(rowFor(e));
    if (expanded.has(e.id)) frag.appendChild(detailsRow(e));
  }
  tbody.replaceChildren(frag);
  renderRowsInfo();
  renderMore();
}

function insertRow(e: LedgerEntry, index: number): void {
  const placeholder = tbody.querySelector('tr.placeholder');
  if (placeholder) placeholder.remove();
  const tr = rowFor(e);
  tr.classList.add('new');
  const rows = tbody.querySelectorAll('tr.entry');
  tbody.insertBefore(tr, rows[index] ?? null);
}

/** While older months are being counted: a calm note that the totals are partial and will update. */
function renderCounting(): void {
  countingNote.hidden = !counting;
  if (!counting) return;
  const left = counting.months.length;
  countingNote.textContent = `Counting older months… (${formatNumber(left)} of ${formatNumber(counting.total)} left) — totals will update`;
}

function renderRowsInfo(): void {
  const total = summary.totals.requests;
  if (counting) {
    // The total leaves the months being counted out: never shown as if it were complete.
    rowsInfo.textContent = `Showing the latest ${formatNumber(loaded.length)} of ${formatNumber(Math.max(total, loaded.length))}+ requests`;
    return;
  }
  rowsInfo.textContent =
    total === 0 ? '' : loaded.length >= total ? requestCount(total) : `Showing the latest ${formatNumber(loaded.length)} of ${formatNumber(total)} requests`;
}

function renderMore(): void {
  loadMoreButton.hidden = !hasMore || !oldest;
  loadMoreButton.disabled = pendingMore >= 0;
  loadMoreButton.textContent = pendingMore >= 0 ? 'Loading…' : 'Load older requests';
}

function renderTotals(): void {
  const t = summary.totals;
  const card = (label: string, value: string, note?: string): HTMLElement => {
    const dd = h('dd', { text: value });
    if (note) dd.appendChild(h('span', { className: 'note', text: note }));
    return h('div', { className: 'card' }, h('dt', { text: label }), dd);
  };
  const cards = h(
    'dl',
    { className: 'cards' },
    card('Requests', formatNumber(t.requests)),
    card('Points', formatNumber(t.points), t.estimatedPoints > 0 ? ` (${formatNumber(t.estimatedPoints)} est.)` : undefined),
    card('Tokens in', formatNumber(t.tokensIn)),
    card('Tokens out', formatNumber(t.tokensOut)),
  );
  cards.id = 'totals-cards';

  const breakdown = (
    id: string,
    caption: string,
    first: string,
    rows: Array<{ name: string; requests: number; points: number; tokensIn: number; tokensOut: number }>,
  ): HTMLElement => {
    const tableEl = h('table', { className: 'breakdown' });
    tableEl.id = id;
    tableEl.appendChild(h('caption', { text: caption }));
    const head = h('tr');
    for (const [label, num] of [
      [first, false],
      ['Requests', true],
      ['Points', true],
      ['Tokens in', true],
      ['Tokens out', true],
    ] as const) {
      const th = h('th', { className: num ? 'num' : '', text: label });
      th.scope = 'col';
      head.appendChild(th);
    }
    tableEl.appendChild(h('thead', {}, head));
    const body = h('tbody');
    for (const r of rows) {
      const th = h('th', { text: r.name });
      th.scope = 'row';
      body.appendChild(
        h(
          'tr',
          {},
          th,
          numCell('td', formatNumber(r.requests)),
          numCell('td', formatNumber(r.points)),
          numCell('td', formatNumber(r.tokensIn)),
          numCell('td', formatNumber(r.tokensOut)),
        ),
      );
    }
    if (rows.length === 0) {
      const td = h('td', { className: 'muted', text: 'No requests' });
      td.colSpan = 5;
      body.appendChild(h('tr', {}, td));
    }
    tableEl.appendChild(body);
    const wrap = h('div', { className: 'breakdown-scroll' }, tableEl);
    wrap.tabIndex = 0; // scrollable region reachable by keyboard
    wrap.setAttribute('role', 'region');
    wrap.setAttribute('aria-label', caption);
    return wrap;
  };

  const days = [...summary.byDay].reverse().map((d) => ({ name: d.day, ...d }));
  const byModel = summary.byModel.map((m) => ({ name: m.model, ...m }));
  const byClient = (summary.byClient ?? []).map((c) => ({ name: c.client || 'unknown', ...c }));
  totalsBox.replaceChildren(
    cards,
    breakdown('totals-by-day', 'By day', 'Day', days),
    breakdown('totals-by-model', 'By model', 'Model', byModel),
    breakdown('totals-by-client', 'By client', 'Client', byClient),
  );
}

function renderChart(): void {
  const width = Math.max(240, Math.floor(chartBox.clientWidth || 480));
  const height = 200;
  const g = buildChart(summary.byDay, { width, height, maxLabels: Math.max(2, Math.floor(width / 90)) });
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  chart.setAttribute('width', String(width));
  chart.setAttribute('height', String(height));
  const desc = chart.querySelector('desc');
  const nodes: Node[] = desc ? [desc] : [];
  if (g.bars.length === 0) {
    nodes.push(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'No points in this range'));
    chart.replaceChildren(...nodes);
    return;
  }
  for (const t of g.yTicks) {
    nodes.push(svg('line', { x1: g.plot.left, x2: g.plot.right, y1: t.y, y2: t.y, class: t.value === 0 ? 'axis' : 'grid' }));
    nodes.push(svg('text', { x: g.plot.left - 6, y: t.y, 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'tick' }, formatCompact(t.value)));
  }
  for (const b of g.bars) {
    const label = `${b.from === b.to ? b.from : `${b.from} – ${b.to}`}: ${formatNumber(b.points)} points, ${requestCount(b.requests)}`;
    // A full-height hit area so thin or empty days still show their tooltip.
    const group = svg('g', { class: 'bar-group' });
    group.appendChild(svg('title', {}, label));
    group.appendChild(svg('rect', { x: b.x, y: g.plot.top, width: b.w, height: g.plot.bottom - g.plot.top, class: 'bar-hit' }));
    if (b.h > 0) group.appendChild(svg('rect', { x: b.x, y: b.y, width: b.w, height: Math.max(1, b.h), class: 'bar' }));
    nodes.push(group);
  }
  for (const l of g.xLabels) nodes.push(svg('text', { x: l.x, y: g.plot.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, l.text));
  chart.replaceChildren(...nodes);
}

let lastChartWidth = 0;
new ResizeObserver(() => {
  const w = Math.floor(chartBox.clientWidth);
  if (w !== lastChartWidth) {
    lastChartWidth = w;
    renderChart();
  }
}).observe(chartBox);

// ---- start -------------------------------------------------------------------------------------

writeFilterControls(state.filter);
saveState();
requestData('ready');
renderTable();
