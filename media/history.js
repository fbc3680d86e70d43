"use strict";
(() => {
  // src/core/store/ledgerRecords.ts
  function refusedReasonText(r) {
    switch (r) {
      case "rate_limit":
        return "refused by the rate limit";
      case "paused":
        return "paused (balance below the cutoff)";
      case "over_budget":
        return "refused over the per-message cap";
      case "invalid_request":
        return "refused as invalid";
      case "gate":
        return "refused at the gate (access key, host, size or format)";
      case "aborted":
        return "cancelled by the client before reaching Poe";
      case "error":
        return "failed before reaching Poe";
    }
  }

  // src/shared/historyModel.ts
  function entryKey(e) {
    return `${e.time}\0${e.id}`;
  }
  function matchesFilter(entry, day, filter) {
    if (filter.model !== null && entry.model !== filter.model) return false;
    if (filter.client != null && entry.client !== filter.client) return false;
    if (filter.from === null && filter.to === null) return true;
    if (!day) return false;
    if (filter.from !== null && day < filter.from) return false;
    if (filter.to !== null && day > filter.to) return false;
    return true;
  }
  function emptySummary() {
    return { totals: { requests: 0, points: 0, tokensIn: 0, tokensOut: 0, estimatedPoints: 0 }, byDay: [], byModel: [], byClient: [] };
  }
  function byModelOrder(a, b) {
    return b.points - a.points || b.requests - a.requests || (a.model < b.model ? -1 : a.model > b.model ? 1 : 0);
  }
  function withEntry(bucket, e, points) {
    return {
      ...bucket,
      requests: bucket.requests + 1,
      points: bucket.points + points,
      tokensIn: bucket.tokensIn + e.tokensIn,
      tokensOut: bucket.tokensOut + e.tokensOut
    };
  }
  function addToSummary(summary2, e, day) {
    const points = e.points ?? 0;
    const t = summary2.totals;
    const totals = {
      requests: t.requests + 1,
      points: t.points + points,
      tokensIn: t.tokensIn + e.tokensIn,
      tokensOut: t.tokensOut + e.tokensOut,
      estimatedPoints: t.estimatedPoints + (e.pointsEstimated ? points : 0)
    };
    let byDay = summary2.byDay;
    if (day) {
      const add = (d) => withEntry(d, e, points);
      const i = summary2.byDay.findIndex((d) => d.day >= day);
      if (i >= 0 && summary2.byDay[i].day === day) {
        byDay = summary2.byDay.map((d, j) => j === i ? add(d) : d);
      } else {
        const fresh = add({ day, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 });
        byDay = i < 0 ? [...summary2.byDay, fresh] : [...summary2.byDay.slice(0, i), fresh, ...summary2.byDay.slice(i)];
      }
    }
    const found = summary2.byModel.find((m) => m.model === e.model);
    const updated = withEntry(found ?? { model: e.model, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }, e, points);
    const byModel = [...summary2.byModel.filter((m) => m !== found), updated].sort(byModelOrder);
    const clients2 = summary2.byClient ?? [];
    const foundClient = clients2.find((c) => c.client === e.client);
    const updatedClient = withEntry(foundClient ?? { client: e.client, requests: 0, points: 0, tokensIn: 0, tokensOut: 0 }, e, points);
    const byClient = [...clients2.filter((c) => c !== foundClient), updatedClient].sort(
      (a, b) => b.points - a.points || b.requests - a.requests || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0)
    );
    return { totals, byDay, byModel, byClient };
  }
  function sortKeyOf(e, key) {
    switch (key) {
      case "time": {
        const t = Date.parse(e.time);
        return Number.isFinite(t) ? t : null;
      }
      case "model":
        return e.model.toLowerCase();
      case "status":
        return e.status;
      case "points":
        return e.points;
      case "balanceAfter":
        return e.balanceAfter;
      default:
        return e[key];
    }
  }
  function cmpKeys(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    const sa = String(a);
    const sb = String(b);
    return sa < sb ? -1 : sa > sb ? 1 : 0;
  }
  function sortEntries(entries, sort) {
    const withKey = entries.map((e) => ({ e, k: sortKeyOf(e, sort.key) }));
    const present = withKey.filter((x) => x.k !== null).sort((a, b) => cmpKeys(a.k, b.k));
    const missing = withKey.filter((x) => x.k === null);
    if (sort.dir === "desc") {
      present.reverse();
      missing.reverse();
    }
    return [...present, ...missing].map((x) => x.e);
  }
  function insertionIndex(rows, entry, sort) {
    const k = sortKeyOf(entry, sort.key);
    for (let i = 0; i < rows.length; i++) {
      const rk = sortKeyOf(rows[i], sort.key);
      if (k === null) {
        if (sort.dir === "desc" && rk === null) return i;
        continue;
      }
      if (rk === null) return i;
      const c = cmpKeys(rk, k);
      if (sort.dir === "asc" ? c > 0 : c <= 0) return i;
    }
    return rows.length;
  }
  function addDays(day, n) {
    const [y, m, d] = day.split("-").map(Number);
    const t = new Date(Date.UTC(y, m - 1, d + n));
    return `${t.getUTCFullYear()}-${String(t.getUTCMonth() + 1).padStart(2, "0")}-${String(t.getUTCDate()).padStart(2, "0")}`;
  }
  function daysBetween(a, b) {
    const ms = (s) => {
      const [y, m, d] = s.split("-").map(Number);
      return Date.UTC(y, m - 1, d);
    };
    return Math.round((ms(b) - ms(a)) / 864e5);
  }
  function niceStep(raw) {
    if (!(raw > 0) || !Number.isFinite(raw)) return 1;
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw - 1e-9 * p) return m * p;
    return 10 * p;
  }
  function buildChart(byDay, opts) {
    const plot = { left: 56, top: 10, right: opts.width - 8, bottom: opts.height - 24 };
    const maxBars = Math.max(1, Math.floor(opts.maxBars ?? 90));
    const maxLabels = Math.max(1, Math.floor(opts.maxLabels ?? 6));
    const maxBarWidth = Math.max(1, opts.maxBarWidth ?? 48);
    const empty = { width: opts.width, height: opts.height, plot, bucketDays: 1, max: 0, bars: [], yTicks: [], xLabels: [] };
    if (byDay.length === 0) return empty;
    const first = byDay[0].day;
    const last = byDay[byDay.length - 1].day;
    const span = daysBetween(first, last) + 1;
    const bucketDays = Math.ceil(span / maxBars);
    const count = Math.ceil(span / bucketDays);
    const buckets = Array.from({ length: count }, (_, i) => ({
      from: addDays(first, i * bucketDays),
      to: addDays(first, Math.min(span - 1, (i + 1) * bucketDays - 1)),
      points: 0,
      requests: 0
    }));
    for (const d of byDay) {
      const i = Math.floor(daysBetween(first, d.day) / bucketDays);
      if (i < 0 || i >= count) continue;
      buckets[i].points += d.points;
      buckets[i].requests += d.requests;
    }
    const top = Math.max(0, ...buckets.map((b) => b.points));
    const step = niceStep(top > 0 ? top / 4 : 1);
    const max = Math.max(step, Math.ceil(top / step - 1e-9) * step);
    const plotW = plot.right - plot.left;
    const plotH = plot.bottom - plot.top;
    const slot = plotW / count;
    const barW = Math.max(1, Math.min(slot * 0.8, slot - 1 > 0 ? slot - 1 : slot, maxBarWidth));
    const bars = buckets.map((b, i) => {
      const h2 = max > 0 ? b.points / max * plotH : 0;
      return { x: plot.left + i * slot + (slot - barW) / 2, y: plot.bottom - h2, w: barW, h: h2, ...b };
    });
    const yTicks = [];
    for (let v = 0; v <= max + 1e-9; v += step) yTicks.push({ y: plot.bottom - v / max * plotH, value: Number(v.toPrecision(12)) });
    const every = Math.ceil(count / maxLabels);
    const xLabels = [];
    for (let i = 0; i < count; i += every) xLabels.push({ x: plot.left + (i + 0.5) * slot, text: buckets[i].from.slice(5) });
    return { width: opts.width, height: opts.height, plot, bucketDays, max, bars, yTicks, xLabels };
  }
  var intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var fracFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  function formatNumber(n) {
    if (n === null || n === void 0 || !Number.isFinite(n)) return "\u2014";
    return Number.isInteger(n) ? intFmt.format(n) : fracFmt.format(n);
  }
  function formatCompact(n) {
    const a = Math.abs(n);
    if (a >= 1e6) return `${Number((n / 1e6).toFixed(1))}M`;
    if (a >= 1e4) return `${Number((n / 1e3).toFixed(1))}k`;
    return formatNumber(n);
  }
  function formatDuration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return "\u2014";
    if (ms < 1e3) return `${Math.round(ms)} ms`;
    if (ms < 6e4) return `${(ms / 1e3).toFixed(1)} s`;
    const s = Math.round(ms / 1e3);
    return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
  }
  function formatTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function formatShortTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const p = (n) => String(n).padStart(2, "0");
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  function pointsKind(e) {
    if (e.points === null) return "";
    return e.pointsEstimated ? "est." : "actual";
  }
  function entryDetails(e) {
    const out = [];
    if (e.error) out.push(e.error);
    out.push(`HTTP ${e.httpStatus}`, e.endpoint);
    if (e.stream) out.push("stream");
    if (e.clipped) out.push("context clipped");
    if (e.retries) out.push(`${e.retries} retr${e.retries === 1 ? "y" : "ies"}`);
    if (e.client) out.push(`client ${e.client}`);
    return out;
  }
  function statusLabel(s) {
    return s === "rate_limited" ? "rate limited" : s;
  }
  function clock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "?";
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }
  function refusedText(g) {
    const span = clock(g.from) === clock(g.to) ? clock(g.from) : `${clock(g.from)}\u2013${clock(g.to)}`;
    return `${formatNumber(g.count)} request${g.count === 1 ? "" : "s"} ${refusedReasonText(g.reason)}, ${g.day} ${span}, from ${g.client || "unknown client"}`;
  }

  // src/shared/historyProtocol.ts
  var MAX_MODEL_CHARS = 256;
  var EMPTY_FILTER = Object.freeze({ model: null, from: null, to: null });
  var SORT_KEYS = ["time", "model", "tokensIn", "tokensOut", "points", "balanceAfter", "status", "durationMs"];
  var DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
  function isDay(v) {
    if (typeof v !== "string") return false;
    const m = DAY.exec(v);
    if (!m) return false;
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (y < 1970 || mo < 1 || mo > 12 || d < 1) return false;
    const date = new Date(Date.UTC(y, mo - 1, d));
    return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
  }
  function isRecord(v) {
    return typeof v === "object" && v !== null && !Array.isArray(v);
  }
  var isRequestId = (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  var isShortString = (v, max) => typeof v === "string" && v.length > 0 && v.length <= max;
  function isHistoryFilter(v) {
    if (!isRecord(v)) return false;
    if (v.model !== null && !isShortString(v.model, MAX_MODEL_CHARS)) return false;
    if (v.client !== void 0 && v.client !== null && !isShortString(v.client, MAX_MODEL_CHARS)) return false;
    if (v.from !== null && !isDay(v.from)) return false;
    if (v.to !== null && !isDay(v.to)) return false;
    return true;
  }
  var STATUSES = ["ok", "error", "aborted", "paused", "refused", "rate_limited"];
  var isNum = (v) => typeof v === "number" && Number.isFinite(v);
  var isNumOrNull = (v) => v === null || isNum(v);
  function isLedgerEntry(v) {
    return isRecord(v) && typeof v.time === "string" && typeof v.id === "string" && typeof v.model === "string" && typeof v.endpoint === "string" && typeof v.stream === "boolean" && STATUSES.includes(v.status) && isNum(v.httpStatus) && isNum(v.tokensIn) && isNum(v.tokensOut) && isNumOrNull(v.points) && typeof v.pointsEstimated === "boolean" && isNumOrNull(v.balanceAfter) && isNum(v.durationMs) && typeof v.clipped === "boolean" && isNum(v.retries) && typeof v.client === "string" && (v.error === void 0 || typeof v.error === "string");
  }
  function isSummary(v) {
    if (!isRecord(v) || !isRecord(v.totals) || !Array.isArray(v.byDay) || !Array.isArray(v.byModel)) return false;
    const t = v.totals;
    if (![t.requests, t.points, t.tokensIn, t.tokensOut, t.estimatedPoints].every(isNum)) return false;
    const counts = (r) => [r.requests, r.points, r.tokensIn, r.tokensOut].every(isNum);
    return v.byDay.every((d) => isRecord(d) && isDay(d.day) && counts(d)) && v.byModel.every((m) => isRecord(m) && typeof m.model === "string" && counts(m)) && (v.byClient === void 0 || Array.isArray(v.byClient) && v.byClient.every((c) => isRecord(c) && typeof c.client === "string" && counts(c)));
  }
  var isEntries = (v) => Array.isArray(v) && v.every(isLedgerEntry);
  var REASONS = ["rate_limit", "paused", "over_budget", "invalid_request", "gate", "aborted", "error"];
  function isRefusedGroup(v) {
    return isRecord(v) && (v.day === "" || isDay(v.day)) && typeof v.client === "string" && REASONS.includes(v.reason) && isNum(v.count) && typeof v.from === "string" && typeof v.to === "string";
  }
  function isToWebview(msg) {
    if (!isRecord(msg)) return false;
    switch (msg.type) {
      case "init":
        return isRequestId(msg.requestId) && isHistoryFilter(msg.filter) && isEntries(msg.entries) && isSummary(msg.summary) && Array.isArray(msg.models) && msg.models.every((m) => typeof m === "string") && typeof msg.hasMore === "boolean" && Array.isArray(msg.refused) && msg.refused.every(isRefusedGroup) && isNum(msg.refusedTotal);
      case "append":
        return isLedgerEntry(msg.entry) && typeof msg.day === "string" && (msg.day === "" || isDay(msg.day));
      case "more":
        return isRequestId(msg.requestId) && isEntries(msg.entries) && typeof msg.hasMore === "boolean";
      case "exportResult":
        return typeof msg.ok === "boolean" && (msg.path === void 0 || typeof msg.path === "string") && (msg.count === void 0 || isNum(msg.count)) && (msg.cancelled === void 0 || typeof msg.cancelled === "boolean") && (msg.error === void 0 || typeof msg.error === "string");
      case "refresh":
        return true;
      case "error":
        return typeof msg.message === "string";
      default:
        return false;
    }
  }
  function parseWebviewState(v) {
    if (!isRecord(v) || !isHistoryFilter(v.filter) || !isRecord(v.sort)) return void 0;
    const { key, dir } = v.sort;
    if (!SORT_KEYS.includes(key) || dir !== "asc" && dir !== "desc") return void 0;
    const scrollY = isNum(v.scrollY) && v.scrollY >= 0 ? v.scrollY : 0;
    const rows = isNum(v.rows) && v.rows >= 0 ? Math.floor(v.rows) : 0;
    return { filter: { model: v.filter.model, from: v.filter.from, to: v.filter.to }, sort: { key, dir }, scrollY, rows };
  }

  // media/history.ts
  var vscode = acquireVsCodeApi();
  var SVG_NS = "http://www.w3.org/2000/svg";
  var FIRST_DIR = {
    time: "desc",
    model: "asc",
    tokensIn: "desc",
    tokensOut: "desc",
    points: "desc",
    balanceAfter: "desc",
    status: "asc",
    durationMs: "desc"
  };
  var restored = parseWebviewState(vscode.getState());
  var state = restored ?? { filter: { ...EMPTY_FILTER }, sort: { key: "time", dir: "desc" }, scrollY: 0, rows: 0 };
  var loaded = [];
  var shown = [];
  var keys = /* @__PURE__ */ new Set();
  var summary = emptySummary();
  var refused = [];
  var refusedTotal = 0;
  var models = [];
  var clients = [];
  var hasMore = false;
  var oldest;
  var nextRequestId = 1;
  var pendingInit = -1;
  var pendingMore = -1;
  var scrollToRestore = restored ? restored.scrollY : void 0;
  function saveState() {
    vscode.setState(state);
  }
  function send(msg) {
    vscode.postMessage(msg);
  }
  function el(id) {
    const e = document.getElementById(id);
    if (!e) throw new Error(`history: missing #${id}`);
    return e;
  }
  var modelSelect = el("filter-model");
  var clientSelect = el("filter-client");
  var fromInput = el("filter-from");
  var toInput = el("filter-to");
  var clearButton = el("clear-filters");
  var exportButton = el("export-csv");
  var exportStatus = el("export-status");
  var totalsBox = el("totals");
  var chartBox = el("chart-box");
  var chart = document.getElementById("points-chart");
  var table = el("history-table");
  var tbody = table.tBodies[0];
  var rowsInfo = el("rows-info");
  var loadMoreButton = el("load-more");
  var refusedBox = el("refused");
  var refusedSummary = el("refused-summary");
  var refusedList = el("refused-list");
  function h(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    if (props.className) e.className = props.className;
    if (props.text !== void 0) e.textContent = props.text;
    for (const c of children) e.appendChild(c);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== void 0) e.textContent = text;
    return e;
  }
  function readFilterControls() {
    return {
      model: modelSelect.value || null,
      client: clientSelect.value || null,
      from: isDay(fromInput.value) ? fromInput.value : null,
      to: isDay(toInput.value) ? toInput.value : null
    };
  }
  function writeFilterControls(f) {
    ensureModelOption(f.model);
    modelSelect.value = f.model ?? "";
    ensureClientOption(f.client ?? null);
    clientSelect.value = f.client ?? "";
    fromInput.value = f.from ?? "";
    toInput.value = f.to ?? "";
    toInput.min = f.from ?? "";
    fromInput.max = f.to ?? "";
  }
  function requestData(kind) {
    const requestId = nextRequestId++;
    pendingInit = requestId;
    pendingMore = -1;
    table.setAttribute("aria-busy", "true");
    if (kind === "ready") send({ type: "ready", requestId, filter: state.filter, rows: state.rows });
    else send({ type: "setFilter", requestId, filter: state.filter });
  }
  function onFilterChange() {
    state.filter = readFilterControls();
    toInput.min = state.filter.from ?? "";
    fromInput.max = state.filter.to ?? "";
    state.rows = 0;
    state.scrollY = 0;
    saveState();
    requestData("setFilter");
  }
  modelSelect.addEventListener("change", onFilterChange);
  clientSelect.addEventListener("change", onFilterChange);
  fromInput.addEventListener("change", onFilterChange);
  toInput.addEventListener("change", onFilterChange);
  el("filters").addEventListener("submit", (ev) => ev.preventDefault());
  clearButton.addEventListener("click", () => {
    writeFilterControls(EMPTY_FILTER);
    onFilterChange();
  });
  exportButton.addEventListener("click", () => {
    exportButton.disabled = true;
    setStatus("Exporting\u2026", false);
    send({ type: "requestExport", filter: state.filter });
  });
  loadMoreButton.addEventListener("click", () => {
    if (!oldest || pendingMore >= 0) return;
    pendingMore = nextRequestId++;
    loadMoreButton.disabled = true;
    loadMoreButton.textContent = "Loading\u2026";
    send({ type: "loadMore", requestId: pendingMore, filter: state.filter, before: oldest });
  });
  for (const button of Array.from(table.querySelectorAll("button.sort-button"))) {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      if (!SORT_KEYS.includes(key)) return;
      state.sort = state.sort.key === key ? { key, dir: state.sort.dir === "asc" ? "desc" : "asc" } : { key, dir: FIRST_DIR[key] };
      saveState();
      shown = sortEntries(loaded, state.sort);
      renderTable();
    });
  }
  var scrollQueued = false;
  window.addEventListener("scroll", () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      state.scrollY = Math.round(window.scrollY);
      saveState();
    });
  });
  function setStatus(text, error) {
    exportStatus.textContent = text;
    exportStatus.classList.toggle("error", error);
  }
  window.addEventListener("message", (ev) => {
    const msg = ev.data;
    if (!isToWebview(msg)) return;
    handle(msg);
  });
  function handle(msg) {
    switch (msg.type) {
      case "init": {
        if (msg.requestId !== pendingInit) return;
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
        hasMore = msg.hasMore;
        oldest = loaded.length > 0 ? { time: loaded[0].time, id: loaded[0].id } : void 0;
        renderModelOptions();
        shown = sortEntries(loaded, state.sort);
        renderAll();
        table.removeAttribute("aria-busy");
        if (scrollToRestore !== void 0) {
          const y = scrollToRestore;
          scrollToRestore = void 0;
          requestAnimationFrame(() => window.scrollTo(0, y));
        }
        return;
      }
      case "more": {
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
      case "append": {
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
      case "exportResult":
        exportButton.disabled = false;
        if (msg.ok) setStatus(`Exported ${formatNumber(msg.count ?? 0)} requests to ${msg.path ?? "the file"}.`, false);
        else if (msg.cancelled) setStatus("Export cancelled.", false);
        else setStatus(`Export failed: ${msg.error ?? "unknown error"}`, true);
        return;
      case "refresh":
        requestData("setFilter");
        return;
      case "error":
        table.removeAttribute("aria-busy");
        pendingInit = -1;
        pendingMore = -1;
        exportButton.disabled = false;
        setStatus(`Error: ${msg.message}`, true);
        renderTable();
        return;
    }
  }
  function ensureModelOption(model) {
    if (model === null) return;
    if (!Array.from(modelSelect.options).some((o) => o.value === model)) modelSelect.appendChild(new Option(model, model));
  }
  function ensureClientOption(client) {
    if (client === null) return;
    if (!Array.from(clientSelect.options).some((o) => o.value === client)) clientSelect.appendChild(new Option(client, client));
  }
  function renderClientOptions() {
    const keep = state.filter.client ?? null;
    const names = keep !== null && !clients.includes(keep) ? [...clients, keep] : clients;
    clientSelect.replaceChildren(new Option("All clients", ""), ...names.map((c) => new Option(c, c)));
    clientSelect.value = keep ?? "";
  }
  function renderModelOptions() {
    const keep = state.filter.model;
    const options = [new Option("All models", "")];
    const names = keep !== null && !models.includes(keep) ? [...models, keep] : models;
    for (const m of names) options.push(new Option(m, m));
    modelSelect.replaceChildren(...options);
    modelSelect.value = keep ?? "";
  }
  function renderAll() {
    renderTable();
    renderOverview();
  }
  var overviewQueued = false;
  function scheduleOverview() {
    if (overviewQueued) return;
    overviewQueued = true;
    requestAnimationFrame(() => {
      overviewQueued = false;
      renderOverview();
      renderRowsInfo();
    });
  }
  function renderOverview() {
    renderTotals();
    renderChart();
    renderRefused();
  }
  function renderRefused() {
    refusedBox.hidden = refusedTotal === 0;
    refusedSummary.textContent = `${formatNumber(refusedTotal)} request${refusedTotal === 1 ? "" : "s"} refused before reaching Poe (no points spent)`;
    refusedList.replaceChildren(...refused.map((g) => h("li", { className: `refused-${g.reason}`, text: refusedText(g) })));
  }
  function numCell(tag, text) {
    return h(tag, { className: "num", text });
  }
  var expanded = /* @__PURE__ */ new Set();
  function columnClasses() {
    return Array.from(table.tHead?.rows[0]?.cells ?? []).map((th) => {
      const cls = th.dataset.col ? `col-${th.dataset.col}` : "";
      if (cls) th.classList.add(cls);
      return cls;
    });
  }
  function rowFor(e) {
    const tr = h("tr", { className: "entry" });
    tr.dataset.model = e.model;
    tr.dataset.status = e.status;
    tr.dataset.id = e.id;
    const timeCell = h("th");
    timeCell.scope = "row";
    const time = h(
      "time",
      {},
      h("span", { className: "time-long", text: formatTime(e.time) }),
      h("span", { className: "time-short", text: formatShortTime(e.time) })
    );
    time.dateTime = e.time;
    time.title = formatTime(e.time);
    timeCell.appendChild(time);
    const kind = pointsKind(e);
    const kindCell = h("td", {}, h("span", { className: kind === "est." ? "tag tag-est" : kind ? "tag tag-actual" : "", text: kind || "\u2014" }));
    if (kind === "est.") kindCell.title = "Estimated: Poe has not listed this request yet; the proxy books the actual points when it does";
    else if (e.replacedEstimate !== void 0)
      kindCell.title = `Actual points from Poe, booked later; they replaced the estimate of ${formatNumber(e.replacedEstimate)}`;
    const status = h("span", { className: `status status-${e.status}`, text: statusLabel(e.status) });
    const details = entryDetails(e);
    const statusCell = h("td", {}, status);
    statusCell.title = details.join(" \xB7 ");
    if (e.status !== "ok" || e.error) {
      const toggle = h("button", { className: "details-toggle" }, status, h("span", { className: "chevron", text: expanded.has(e.id) ? "\u25BE" : "\u25B8" }));
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", String(expanded.has(e.id)));
      toggle.setAttribute("aria-controls", detailsId(e));
      toggle.setAttribute("aria-label", `${statusLabel(e.status)}: show details`);
      toggle.addEventListener("click", () => toggleDetails(e, tr, toggle));
      statusCell.replaceChildren(toggle);
    }
    const modelCell = h("td", { className: "model", text: e.model });
    modelCell.title = e.model;
    const clientCell = h("td", { className: "client", text: e.client });
    clientCell.title = e.client;
    const pointsCell = numCell("td", formatNumber(e.points));
    if (kind === "est.") pointsCell.classList.add("points-est");
    tr.append(
      timeCell,
      modelCell,
      numCell("td", formatNumber(e.tokensIn)),
      numCell("td", formatNumber(e.tokensOut)),
      pointsCell,
      kindCell,
      numCell("td", formatNumber(e.balanceAfter)),
      statusCell,
      numCell("td", formatDuration(e.durationMs)),
      clientCell
    );
    const classes = columnClasses();
    Array.from(tr.cells).forEach((cell, i) => {
      if (classes[i]) cell.classList.add(classes[i]);
    });
    return tr;
  }
  function detailsId(e) {
    return `details-${e.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  }
  function detailsRow(e) {
    const td = h("td", {}, h("span", { className: "details-text", text: entryDetails(e).join(" \xB7 ") }));
    td.colSpan = table.tHead?.rows[0]?.cells.length ?? 9;
    const tr = h("tr", { className: "details" }, td);
    tr.id = detailsId(e);
    return tr;
  }
  function toggleDetails(e, row, toggle) {
    const open = !expanded.has(e.id);
    if (open) expanded.add(e.id);
    else expanded.delete(e.id);
    toggle.setAttribute("aria-expanded", String(open));
    const chevron = toggle.querySelector(".chevron");
    if (chevron) chevron.textContent = open ? "\u25BE" : "\u25B8";
    const next = row.nextElementSibling;
    if (open && !next?.classList.contains("details")) row.after(detailsRow(e));
    else if (!open && next?.classList.contains("details")) next.remove();
  }
  function emptyRow() {
    const text = pendingInit >= 0 ? "Loading\u2026" : anyFilter() ? "No requests match these filters." : "No requests recorded yet.";
    const td = h("td", { className: "empty muted", text });
    if (pendingInit < 0 && !anyFilter()) {
      const step = (label, next, secondary = true) => {
        const b = h("button", { className: secondary ? "secondary" : "", text: label });
        b.type = "button";
        b.dataset.step = next;
        b.addEventListener("click", () => send({ type: "nextStep", step: next }));
        return b;
      };
      td.append(
        h(
          "span",
          { className: "next-steps" },
          step("Configure a Client\u2026", "configureClient", false),
          step("Copy Base URL", "copyBaseUrl"),
          step("Open Walkthrough", "walkthrough")
        )
      );
    }
    td.colSpan = table.tHead?.rows[0]?.cells.length ?? 9;
    return h("tr", { className: "placeholder" }, td);
  }
  function anyFilter() {
    return state.filter.model !== null || (state.filter.client ?? null) !== null || state.filter.from !== null || state.filter.to !== null;
  }
  function renderTable() {
    for (const th of Array.from(table.querySelectorAll("th[data-sort]"))) {
      const active = th.dataset.sort === state.sort.key;
      th.setAttribute("aria-sort", active ? state.sort.dir === "asc" ? "ascending" : "descending" : "none");
      th.classList.toggle("sorted", active);
      const ind = th.querySelector(".sort-indicator");
      if (ind) ind.textContent = active ? state.sort.dir === "asc" ? " \u25B2" : " \u25BC" : "";
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
  function insertRow(e, index) {
    const placeholder = tbody.querySelector("tr.placeholder");
    if (placeholder) placeholder.remove();
    const tr = rowFor(e);
    tr.classList.add("new");
    const rows = tbody.querySelectorAll("tr.entry");
    tbody.insertBefore(tr, rows[index] ?? null);
  }
  function renderRowsInfo() {
    const total = summary.totals.requests;
    rowsInfo.textContent = total === 0 ? "" : loaded.length >= total ? `${formatNumber(total)} request${total === 1 ? "" : "s"}` : `Showing the latest ${formatNumber(loaded.length)} of ${formatNumber(total)} requests`;
  }
  function renderMore() {
    loadMoreButton.hidden = !hasMore || !oldest;
    loadMoreButton.disabled = pendingMore >= 0;
    loadMoreButton.textContent = pendingMore >= 0 ? "Loading\u2026" : "Load older requests";
  }
  function renderTotals() {
    const t = summary.totals;
    const card = (label, value, note) => {
      const dd = h("dd", { text: value });
      if (note) dd.appendChild(h("span", { className: "note", text: note }));
      return h("div", { className: "card" }, h("dt", { text: label }), dd);
    };
    const cards = h(
      "dl",
      { className: "cards" },
      card("Requests", formatNumber(t.requests)),
      card("Points", formatNumber(t.points), t.estimatedPoints > 0 ? ` (${formatNumber(t.estimatedPoints)} est.)` : void 0),
      card("Tokens in", formatNumber(t.tokensIn)),
      card("Tokens out", formatNumber(t.tokensOut))
    );
    cards.id = "totals-cards";
    const breakdown = (id, caption, first, rows) => {
      const tableEl = h("table", { className: "breakdown" });
      tableEl.id = id;
      tableEl.appendChild(h("caption", { text: caption }));
      const head = h("tr");
      for (const [label, num] of [
        [first, false],
        ["Requests", true],
        ["Points", true],
        ["Tokens in", true],
        ["Tokens out", true]
      ]) {
        const th = h("th", { className: num ? "num" : "", text: label });
        th.scope = "col";
        head.appendChild(th);
      }
      tableEl.appendChild(h("thead", {}, head));
      const body = h("tbody");
      for (const r of rows) {
        const th = h("th", { text: r.name });
        th.scope = "row";
        body.appendChild(
          h(
            "tr",
            {},
            th,
            numCell("td", formatNumber(r.requests)),
            numCell("td", formatNumber(r.points)),
            numCell("td", formatNumber(r.tokensIn)),
            numCell("td", formatNumber(r.tokensOut))
          )
        );
      }
      if (rows.length === 0) {
        const td = h("td", { className: "muted", text: "No requests" });
        td.colSpan = 5;
        body.appendChild(h("tr", {}, td));
      }
      tableEl.appendChild(body);
      const wrap = h("div", { className: "breakdown-scroll" }, tableEl);
      wrap.tabIndex = 0;
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", caption);
      return wrap;
    };
    const days = [...summary.byDay].reverse().map((d) => ({ name: d.day, ...d }));
    const byModel = summary.byModel.map((m) => ({ name: m.model, ...m }));
    const byClient = (summary.byClient ?? []).map((c) => ({ name: c.client || "unknown", ...c }));
    totalsBox.replaceChildren(
      cards,
      breakdown("totals-by-day", "By day", "Day", days),
      breakdown("totals-by-model", "By model", "Model", byModel),
      breakdown("totals-by-client", "By client", "Client", byClient)
    );
  }
  function renderChart() {
    const width = Math.max(240, Math.floor(chartBox.clientWidth || 480));
    const height = 200;
    const g = buildChart(summary.byDay, { width, height, maxLabels: Math.max(2, Math.floor(width / 90)) });
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("width", String(width));
    chart.setAttribute("height", String(height));
    const desc = chart.querySelector("desc");
    const nodes = desc ? [desc] : [];
    if (g.bars.length === 0) {
      nodes.push(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty" }, "No points in this range"));
      chart.replaceChildren(...nodes);
      return;
    }
    for (const t of g.yTicks) {
      nodes.push(svg("line", { x1: g.plot.left, x2: g.plot.right, y1: t.y, y2: t.y, class: t.value === 0 ? "axis" : "grid" }));
      nodes.push(svg("text", { x: g.plot.left - 6, y: t.y, "text-anchor": "end", "dominant-baseline": "middle", class: "tick" }, formatCompact(t.value)));
    }
    for (const b of g.bars) {
      const label = `${b.from === b.to ? b.from : `${b.from} \u2013 ${b.to}`}: ${formatNumber(b.points)} points, ${formatNumber(b.requests)} request${b.requests === 1 ? "" : "s"}`;
      const group = svg("g", { class: "bar-group" });
      group.appendChild(svg("title", {}, label));
      group.appendChild(svg("rect", { x: b.x, y: g.plot.top, width: b.w, height: g.plot.bottom - g.plot.top, class: "bar-hit" }));
      if (b.h > 0) group.appendChild(svg("rect", { x: b.x, y: b.y, width: b.w, height: Math.max(1, b.h), class: "bar" }));
      nodes.push(group);
    }
    for (const l of g.xLabels) nodes.push(svg("text", { x: l.x, y: g.plot.bottom + 16, "text-anchor": "middle", class: "tick" }, l.text));
    chart.replaceChildren(...nodes);
  }
  var lastChartWidth = 0;
  new ResizeObserver(() => {
    const w = Math.floor(chartBox.clientWidth);
    if (w !== lastChartWidth) {
      lastChartWidth = w;
      renderChart();
    }
  }).observe(chartBox);
  writeFilterControls(state.filter);
  saveState();
  requestData("ready");
  renderTable();
})();
//# sourceMappingURL=history.js.map
