// Runs in its own process (see ledger.mjs): `node --expose-gc ledger-child.cjs <support.js> <dir> <cold|warm> <busyModel> <rareModel>`.
// Prints one JSON object with the timings (ms) and memory (MB) of what the history view does.
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const [supportPath, dir, phase, busyModel, rareModel] = process.argv.slice(2);
const { Ledger, loadHistory, loadOlder, exportHistoryCsv } = require(supportPath);
const MB = 1024 * 1024;
const NONE = { model: null, from: null, to: null };

function heapMB() {
  global.gc();
  return process.memoryUsage().heapUsed / MB;
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function main() {
  const out = {};
  const heap0 = heapMB();
  const rss0 = process.memoryUsage().rss / MB;
  // What the proxy does at start: construct the ledger (reads nothing) and write its first entry.
  let t = await timed(async () => new Ledger({ dir }));
  out.constructMs = t.ms;
  const ledger = t.value;
  if (phase === 'cold' || phase === 'tz') {
    // First open with months to count (cold: an older version's months, no index; tz: another time
    // zone than the indexes'): answered at once with what is counted, the rest counted in the background.
    const counted = new Promise((resolve) => ledger.onDidIndex((p) => p.months.length === 0 && resolve()));
    // The longest the event loop was held while the view answered and the months were counted.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    t = await timed(() => loadHistory(ledger, NONE, 2000));
    out.openMs = t.ms;
    out.rows = t.value.entries.length;
    out.partialRequests = t.value.summary.totals.requests;
    out.pendingMonths = t.value.pending ? t.value.pending.months.length : 0;
    if (out.pendingMonths > 0) await counted;
    out.completeMs = performance.now() - t0;
    loop.disable();
    out.countLoopDelayMaxMs = loop.max / 1e6;
    t = await timed(() => loadHistory(ledger, NONE, 2000));
    out.completeOpenMs = t.ms;
    out.totalRequests = t.value.summary.totals.requests;
    out.heapAfterOpenMB = heapMB() - heap0;
    out.rssMB = process.memoryUsage().rss / MB - rss0;
    if (phase === 'tz') {
      process.stdout.write(JSON.stringify(out));
      return;
    }
    // The months of an older version (one gzip member each) are rewritten in pieces in the background.
    t = await timed(() => ledger.flush());
    out.repieceMs = t.ms;
    out.indexBytes = fs.readdirSync(path.join(dir, '.ledger-index')).reduce((n, f) => n + fs.statSync(path.join(dir, '.ledger-index', f)).size, 0);
    process.stdout.write(JSON.stringify(out));
    return;
  }
  t = await timed(() => loadHistory(ledger, NONE, 2000));
  out.openMs = t.ms;
  out.totalRequests = t.value.summary.totals.requests;
  const first = t.value.entries;
  out.heapAfterOpenMB = heapMB() - heap0;
  // Filters, as the webview sends them (each a new `setFilter`).
  const today = new Date();
  const day = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  const monthAgo = new Date(today.getTime() - 30 * 86400_000);
  const halfYearAgo = new Date(today.getTime() - 182 * 86400_000);
  out.filterBusyModelMs = (await timed(() => loadHistory(ledger, { model: busyModel, from: null, to: null }, 2000))).ms;
  out.filterLastMonthMs = (await timed(() => loadHistory(ledger, { model: null, from: day(monthAgo), to: day(today) }, 2000))).ms;
  out.filterOldRangeMs = (
    await timed(() => loadHistory(ledger, { model: null, from: day(halfYearAgo), to: day(new Date(halfYearAgo.getTime() + 7 * 86400_000)) }, 2000))
  ).ms;
  t = await timed(() => loadHistory(ledger, { model: rareModel, from: null, to: null }, 2000));
  out.filterRareModelMs = t.ms;
  out.rareRows = t.value.entries.length;
  out.totalsOnlyMs = (await timed(() => ledger.query({ model: busyModel, from: day(halfYearAgo), to: null }))).ms;
  // "Load older requests" at the start of the current month's file and across into a .gz month.
  out.loadOlderMs = (await timed(() => loadOlder(ledger, NONE, { time: first[0].time, id: first[0].id }, 2000))).ms;
  out.heapPeakishMB = heapMB() - heap0;
  const csv = path.join(dir, 'export.csv');
  let maxRss = 0;
  const rssBeforeExport = process.memoryUsage().rss / MB;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss / MB)), 20);
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  t = await timed(() => exportHistoryCsv(ledger, NONE, csv));
  loopDelay.disable();
  clearInterval(sampler);
  // What the export itself adds (the figure above also holds what the view and filters left).
  out.exportRssGrowthMB = maxRss - rssBeforeExport;
  out.exportLoopDelayMaxMs = loopDelay.max / 1e6;
  out.exportMs = t.ms;
  out.exportRows = t.value;
  out.exportBytes = fs.statSync(csv).size;
  out.exportRssMB = maxRss - rss0;
  fs.rmSync(csv);
  // The proxy's first entry on a directory holding a year: written without reading the year.
  const fresh = new Ledger({ dir });
  t = await timed(async () => {
    fresh.append({
      time: new Date().toISOString(),
      id: 'bench',
      model: busyModel,
      endpoint: 'chat',
      stream: false,
      status: 'ok',
      httpStatus: 200,
      tokensIn: 1,
      tokensOut: 1,
      points: 1,
      pointsEstimated: false,
      balanceAfter: null,
      durationMs: 1,
      clipped: false,
      retries: 0,
      client: 'bench',
    });
    await fresh.flush();
  });
  out.firstAppendMs = t.ms;
  // What the proxy reads at start for its budgets and reconciler: the old whole-month read, and the seed from the index.
  const since = new Date(today.getFullYear(), today.getMonth(), 1);
  let heapBefore = heapMB();
  t = await timed(() => new Ledger({ dir }).read({ since }));
  out.seedByReadMs = t.ms;
  out.seedByReadEntries = t.value.length;
  out.seedByReadHeapMB = process.memoryUsage().heapUsed / MB - heapBefore;
  t = null;
  heapBefore = heapMB();
  t = await timed(() => new Ledger({ dir }).startupSeed({ fromDay: day(since), recentSince: new Date(Date.now() - 6 * 3_600_000), before: new Date() }));
  out.seedMs = t.ms;
  out.seedDays = t.value.days.length;
  out.seedRecentEntries = t.value.recent.length;
  out.seedHeapMB = process.memoryUsage().heapUsed / MB - heapBefore;
  out.heapEndMB = heapMB() - heap0;
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
