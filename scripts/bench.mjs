#!/usr/bin/env node
// `npm run bench`: the proxy's benchmark, in one run, side by side on loopback with the fake Poe upstream.
//   1. added latency, non-streaming (direct / minimal node:http pass-through / the proxy), concurrency 1 and 64
//   2. streaming: TTFB and total of a 2,000-chunk stream, throughput at 100 concurrent streams, per-chunk delay
//   3. clipping a 200k-token conversation (first time, next turn) + js-tiktoken vs gpt-tokenizer + the token worker
//      as shipped (cold start, heap, RSS, speed, counts identical to js-tiktoken's)
//   4. the extension: bundle size, activation in a real VS Code host, tokenizer load time
//   5. the proxy's RSS before and after 10,000 requests
//   7. the cost ledger at a year of heavy use (1,000,000 entries): history open, filters, paging, export, memory
//   8. one 8 MB SSE event in 16 KB chunks through the SSE parser and the event aligner
//   9. a client that disconnects mid-stream: time until the upstream request is closed
// Medians over several runs. Writes bench/results/bench-<time>.{json,md} and latest.{json,md}, prints the markdown.
//
// Options: --runs N (default 3)  --no-host (skip the VS Code host)  --host-runs N (default 1)
//          --no-tokenizers (skip the tokenizer comparison)  --quick (fewer requests, for a smoke run)
//          --no-ledger (skip section 7)  --ledger-entries N (default 1,000,000; 100,000 with --quick)
//          --relay-only (sections 1 and 2 only: the relay's latency, streaming and CPU per request / chunk)
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildForBench, ROOT } from './bench/build.mjs';
import { clippingRuns, tokenizerComparison } from './bench/clipping.mjs';
import { hugeEventRuns } from './bench/sseEvent.mjs';
import { bundleFacts, hostActivation, tokenizerLoad } from './bench/extension.mjs';
import { formatMarkdown as tokenizerMarkdown } from './bench/tokenizers.mjs';
import { tokenWorkerMarkdown, tokenWorkerRuns } from './bench/tokenWorker.mjs';
import { ledgerRun } from './bench/ledger.mjs';
import { accountingRun } from './bench/accounting.mjs';
import { abortRun } from './bench/abort.mjs';
import { latencyRun, memoryRun, relayOnlyMarkdown, startTopology, streamingRun } from './bench/relay.mjs';
import { fmt, median, medianOf, pass, ratio } from './bench/stats.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const quick = args.includes('--quick');
const runs = opt('--runs', quick ? 1 : 3);
const withHost = !args.includes('--no-host');
const hostRuns = opt('--host-runs', 1);
const withTokenizers = !args.includes('--no-tokenizers');
const withLedger = !args.includes('--no-ledger');
const relayOnly = args.includes('--relay-only');
const ledgerEntries = opt('--ledger-entries', quick ? 100_000 : 1_000_000);
const log = (m) => process.stderr.write(`bench: ${m}\n`);

const RESULTS = path.join(ROOT, 'bench', 'results');
mkdirSync(RESULTS, { recursive: true });

const LAT = quick ? { c1Total: 300, c64Total: 1000, warmup: 100 } : { c1Total: 2000, c64Total: 6400, warmup: 300 };
const STREAM = quick
  ? { chunks: 2000, singleRepeats: 2, concurrentStreams: 100, stampStreams: 5, stampChunks: 100, stampDelayMs: 5 }
  : { chunks: 2000, singleRepeats: 5, concurrentStreams: 100, stampStreams: 10, stampChunks: 200, stampDelayMs: 5 };

const started = Date.now();
const result = {
  startedAt: new Date(started).toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavg: os.loadavg(),
    totalMemMB: Math.round(os.totalmem() / 1048576),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  },
  options: { runs, quick, withHost, hostRuns, latency: LAT, streaming: STREAM },
};

log('building (esbuild, production, into bench/results/build)…');
const build = await buildForBench();
result.build = { ms: build.ms, sizes: build.sizes };

// ── 1, 2, 5: relay ──
const topo = await startTopology({ build, resultsDir: RESULTS });
try {
  result.latencyRuns = [];
  result.streamingRuns = [];
  for (let r = 0; r < runs; r++) {
    log(`run ${r + 1}/${runs}: latency…`);
    result.latencyRuns.push(await latencyRun(topo.targets, topo.pids, LAT));
    log(`run ${r + 1}/${runs}: streaming…`);
    result.streamingRuns.push(await streamingRun(topo.targets, topo.pids, STREAM, r));
  }
  if (!relayOnly) {
    log('memory: 10,000 requests through the proxy…');
    result.memory = await memoryRun(topo.targets.proxy, topo.proxyPid, { requests: quick ? 2000 : 10_000 });
  }
} finally {
  await topo.stop();
}
if (relayOnly) {
  const md = relayOnlyMarkdown(result, { LAT, STREAM });
  const stamp = result.startedAt.replace(/[:.]/g, '-');
  writeFileSync(path.join(RESULTS, `relay-${stamp}.json`), JSON.stringify(result, null, 2));
  writeFileSync(path.join(RESULTS, `relay-${stamp}.md`), `${md}\n`);
  process.stdout.write(`${md}\n`);
  log(`results: bench/results/relay-${stamp}.{json,md}`);
  process.exit(0);
}

// ── 6: accounting with a lagging points_history ──
log('accounting: a tool-call and a streamed text turn with a 5 s points_history lag…');
result.accounting = await accountingRun(build, RESULTS, { turns: quick ? 4 : 10 });

// ── 9: client disconnect → upstream abort ──
log('client disconnects mid-stream: time until the upstream request is closed…');
result.abort = await abortRun(build, RESULTS, { runs: quick ? 5 : 15 });

// ── 3: clipping ──
log('clipping a 200k-token conversation…');
result.clipping = await clippingRuns(build.support, { runs, log });
if (withTokenizers) {
  log('tokenizers: js-tiktoken vs gpt-tokenizer…');
  result.tokenizers = await tokenizerComparison(build.support, log);
}
log('the token worker as shipped…');
result.tokenWorker = await tokenWorkerRuns(build, { runs, log });

// ── 8: one huge SSE event ──
log('one 8 MB SSE event in 16 KB chunks…');
result.hugeEvent = hugeEventRuns(build.support, { runs });

// ── 4: extension ──
result.extension = { bundle: bundleFacts(build), tokenizerLoad: await tokenizerLoad(build.support, 3) };
if (withHost) {
  log(`activation in a real VS Code host (${hostRuns} run(s))…`);
  result.extension.host = await hostActivation(build, { runs: hostRuns, log });
}
// ── 7: ledger ──
if (withLedger) result.ledger = await ledgerRun(build.support, { entries: ledgerEntries, log });
result.finishedAt = new Date().toISOString();
result.machine.loadavgAfter = os.loadavg();

// ── medians and targets ──
const PATHS = ['direct', 'floor', 'proxyNoPoints', 'proxy'];
const LABEL = {
  direct: 'direct to the fake upstream',
  floor: 'minimal node:http pass-through',
  proxyNoPoints: 'proxy, POINTS_WAIT_MS=0',
  proxy: 'proxy, default settings',
};
const lat = {};
for (const c of ['c1', 'c64']) {
  lat[c] = {};
  for (const p of PATHS) {
    const m = (f) => medianOf(result.latencyRuns, `${p}.${c}.${f}`);
    lat[c][p] = {
      p50: m('p50'),
      p99: m('p99'),
      rps: m('rps'),
      cpuUs: m('relayCpuUsPerReq'),
      errors: result.latencyRuns.reduce((s, x) => s + x[p][c].errors, 0),
    };
  }
  for (const p of PATHS) {
    const d = lat[c].direct;
    Object.assign(lat[c][p], {
      addedP50: lat[c][p].p50 - d.p50,
      addedP99: lat[c][p].p99 - d.p99,
      ratioP50: ratio(lat[c][p].p50, d.p50),
      ratioP99: ratio(lat[c][p].p99, d.p99),
    });
  }
}
const st = {};
for (const p of PATHS) {
  const m = (f) => medianOf(result.streamingRuns, `${p}.${f}`);
  st[p] = {
    ttfbMs: m('ttfbMs'),
    totalMs: m('totalMs'),
    chunksPerSec: m('throughput.chunksPerSec'),
    chunksPerSecWhole: m('throughput.chunksPerSecWholeStreams'),
    cpuUsPerChunk: m('throughput.relayCpuUsPerChunk'),
    delayP50: m('chunkDelay.p50'),
    delayP99: m('chunkDelay.p99'),
    delayMax: m('chunkDelay.max'),
    chunksSeen: result.streamingRuns.map((x) => x[p].chunkDelay.chunks),
    chunksExpected: result.streamingRuns[0][p].chunkDelay.expected,
  };
}
for (const p of PATHS) st[p].throughputRatio = ratio(st[p].chunksPerSec, st.direct.chunksPerSec);
const clip = {
  firstColdMs: medianOf(result.clipping.runs, 'firstColdMs'),
  firstWarmWorkerMs: medianOf(result.clipping.runs, 'firstWarmWorkerMs'),
  nextTurnMs: medianOf(result.clipping.runs, 'nextTurnMs'),
  nextTurnMaxMs: Math.max(...result.clipping.runs.map((r) => r.nextTurnMaxMs)),
};
const host = result.extension.host;
const MB = 1048576;
const targets = [
  {
    name: 'added p50 latency at concurrency 64 (proxy, default settings)',
    target: '< 0.3 ms',
    value: lat.c64.proxy.addedP50,
    unit: 'ms',
    ok: lat.c64.proxy.addedP50 < 0.3,
  },
  {
    name: 'added p99 latency at concurrency 64 (proxy, default settings)',
    target: '< 2 ms',
    value: lat.c64.proxy.addedP99,
    unit: 'ms',
    ok: lat.c64.proxy.addedP99 < 2,
  },
  {
    name: 'added p50 latency at concurrency 64 (proxy, POINTS_WAIT_MS=0)',
    target: '< 0.3 ms',
    value: lat.c64.proxyNoPoints.addedP50,
    unit: 'ms',
    ok: lat.c64.proxyNoPoints.addedP50 < 0.3,
  },
  {
    name: 'added p99 latency at concurrency 64 (proxy, POINTS_WAIT_MS=0)',
    target: '< 2 ms',
    value: lat.c64.proxyNoPoints.addedP99,
    unit: 'ms',
    ok: lat.c64.proxyNoPoints.addedP99 < 2,
  },
  { name: 'streaming throughput, 100 streams, vs direct', target: '≥ 0.9×', value: st.proxy.throughputRatio, unit: '×', ok: st.proxy.throughputRatio >= 0.9 },
  { name: 'next-turn clip of a 200k-token conversation', target: '< 5 ms', value: clip.nextTurnMs, unit: 'ms', ok: clip.nextTurnMs < 5 },
  {
    name: `token worker cold start (spawn → first count, o200k loaded; its CPU time ${fmt(result.tokenWorker.coldStartCpuMs, 0)} ms, which load inflates less)`,
    target: '≤ 600 ms',
    value: result.tokenWorker.coldStartMs,
    unit: 'ms',
    ok: result.tokenWorker.coldStartMs <= 600,
  },
  {
    name: 'token worker heap (after a GC, o200k loaded and the corpus counted)',
    target: '≤ 60 MB',
    value: result.tokenWorker.heapAfterCorpusMB,
    unit: 'MB',
    ok: result.tokenWorker.heapAfterCorpusMB <= 60,
  },
  {
    name: 'token worker counts identical to js-tiktoken (the worker before), tokenizer corpus',
    target: 'all docs',
    value: result.tokenWorker.vsPreviousWorker.exactDocs,
    unit: `of ${result.tokenWorker.vsPreviousWorker.docs} docs`,
    ok: result.tokenWorker.vsPreviousWorker.exactDocs === result.tokenWorker.vsPreviousWorker.docs,
  },
  {
    name: 'activation (activate entry → return, real host)',
    target: '< 20 ms',
    value: host?.activationMs,
    unit: 'ms',
    ok: host && Number.isFinite(host.activationMs) ? host.activationMs < 20 : undefined,
  },
  {
    name: `time accounting adds to a tool-call turn (points_history lag ${result.accounting.lagMs / 1000} s)`,
    target: '0 ms',
    value: result.accounting.toolCallAddedMs,
    unit: 'ms',
    ok: result.accounting.toolCallAddedMs < 5,
  },
  {
    name: `time accounting adds to a streamed text turn (points_history lag ${result.accounting.lagMs / 1000} s)`,
    target: `≤ footer budget (${result.accounting.footerBudgetMs} ms, +25 ms for timer slack)`,
    value: result.accounting.textAddedMs,
    unit: 'ms',
    ok: result.accounting.textAddedMs <= result.accounting.footerBudgetMs + 25,
  },
  {
    name: `client disconnect mid-stream → upstream request closed, median of ${result.abort.runs}`,
    target: '< 100 ms',
    value: result.abort.medianMs,
    unit: 'ms',
    ok: result.abort.medianMs < 100,
  },
  {
    name: 'dist/extension.js (production) without tokenizer ranks',
    target: '< 1 MB, no ranks',
    value: build.sizes.extension / MB,
    unit: 'MB',
    ok: build.sizes.extension < MB && !result.extension.bundle.tokenizerInExtension,
  },
];
const lg = result.ledger;
if (lg) {
  const n = lg.layout.entries.toLocaleString('en-US');
  const filters = Math.max(lg.warm.filterBusyModelMs, lg.warm.filterLastMonthMs, lg.warm.filterOldRangeMs);
  targets.push(
    { name: `history view opens, ${n} entries (index cached: a window reload)`, target: '< 1 s', value: lg.warm.openMs, unit: 'ms', ok: lg.warm.openMs < 1000 },
    {
      name: `history view opens, ${n} entries, first time after an upgrade (older months counted in the background)`,
      target: '< 1 s',
      value: lg.cold.openMs,
      unit: 'ms',
      ok: lg.cold.openMs < 1000,
    },
    ...(lg.tz
      ? [{ name: `history view opens, ${n} entries, after a time-zone change`, target: '< 1 s', value: lg.tz.openMs, unit: 'ms', ok: lg.tz.openMs < 1000 }]
      : []),
    {
      name: `history filter (busy model; last month; a week half a year ago), slowest, ${n} entries`,
      target: '< 200 ms',
      value: filters,
      unit: 'ms',
      ok: filters < 200,
    },
    {
      name: `history filter, a model in 1 of 2,000 entries over the whole year, ${n} entries`,
      target: '< 200 ms',
      value: lg.warm.filterRareModelMs,
      unit: 'ms',
      ok: lg.warm.filterRareModelMs < 200,
    },
    {
      name: `CSV export of ${n} entries: memory it adds (RSS peak over its start)`,
      target: '< 50 MB',
      value: lg.warm.exportRssGrowthMB,
      unit: 'MB',
      ok: lg.warm.exportRssGrowthMB < 50,
    },
    {
      name: `history memory (heap after open, filters and paging), ${n} entries`,
      target: '< 50 MB',
      value: lg.warm.heapPeakishMB,
      unit: 'MB',
      ok: lg.warm.heapPeakishMB < 50,
    },
  );
}
result.summary = { latency: lat, streaming: st, clipping: clip, targets };

// ── markdown ──
const L = [];
const m = result.machine;
L.push(`## Benchmark — ${result.startedAt}`);
L.push('');
L.push(
  `Machine: ${m.cpus} cores (${m.cpuModel}), ${m.totalMemMB} MB, Node ${m.node}, ${m.platform}; load average ${m.loadavg.map((x) => x.toFixed(2)).join(' / ')} at start, ${m.loadavgAfter.map((x) => x.toFixed(2)).join(' / ')} at the end. ` +
    `Figures are medians over ${runs} run(s); every party (client, fake upstream, pass-through, proxy) is its own process on loopback.`,
);
L.push('');
L.push('### Targets');
L.push('');
L.push('| Target | Goal | Measured | Met |');
L.push('|---|---|---|---|');
for (const t of targets)
  L.push(
    `| ${t.name} | ${t.target} | ${t.unit === '×' ? `${fmt(t.value)}×` : `${fmt(t.value, Number.isInteger(t.value) ? 0 : t.unit === 'MB' ? 3 : 2)} ${t.unit}`} | ${pass(t.ok)} |`,
  );
L.push('');
for (const [c, title] of [
  ['c1', 'concurrency 1'],
  ['c64', 'concurrency 64'],
]) {
  L.push(`### 1. Non-streaming latency, ${title} (${c === 'c1' ? LAT.c1Total : LAT.c64Total} requests per path per run, the paths taking turns in 8 blocks)`);
  L.push('');
  L.push('| Path | p50 | p99 | added p50 | added p99 | p50 ratio | p99 ratio | req/s | relay CPU / request |');
  L.push('|---|---|---|---|---|---|---|---|---|');
  for (const p of PATHS) {
    const x = lat[c][p];
    const direct = p === 'direct';
    L.push(
      `| ${LABEL[p]} | ${fmt(x.p50)} ms | ${fmt(x.p99)} ms | ${direct ? '—' : `${fmt(x.addedP50)} ms`} | ${direct ? '—' : `${fmt(x.addedP99)} ms`} | ${direct ? '—' : `${fmt(x.ratioP50)}×`} | ${direct ? '—' : `${fmt(x.ratioP99)}×`} | ${fmt(x.rps, 0)} | ${direct ? '—' : `${fmt(x.cpuUs, 0)} µs`} |`,
    );
  }
  L.push('');
}
L.push(`### 2. Streaming (${STREAM.chunks}-chunk streams)`);
L.push('');
L.push(
  `| Path | TTFB, 1 stream | total, 1 stream | chunks/s, ${STREAM.concurrentStreams} streams | vs direct | chunks/s incl. stream end | relay CPU / chunk | per-chunk delay p50 / p99 / max |`,
);
L.push('|---|---|---|---|---|---|---|---|');
for (const p of PATHS) {
  const x = st[p];
  L.push(
    `| ${LABEL[p]} | ${fmt(x.ttfbMs)} ms | ${fmt(x.totalMs)} ms | ${fmt(x.chunksPerSec, 0)} | ${fmt(x.throughputRatio)}× | ${fmt(x.chunksPerSecWhole, 0)} | ${p === 'direct' ? '—' : `${fmt(x.cpuUsPerChunk, 1)} µs`} | ${fmt(x.delayP50)} / ${fmt(x.delayP99)} / ${fmt(x.delayMax)} ms |`,
  );
}
L.push('');
L.push(
  `Per-chunk delay: ${STREAM.stampStreams} concurrent streams of ${STREAM.stampChunks} chunks ${STREAM.stampDelayMs} ms apart; each chunk carries the monotonic time the fake wrote it, the client subtracts it from the arrival time. ` +
    `Chunks seen per run: ${PATHS.map((p) => `${p} ${st[p].chunksSeen.join('/')}`).join(', ')} of ${st.direct.chunksExpected}.`,
);
L.push('');
const cl = result.clipping;
L.push(`### 3. Clipping a 200k-token conversation (${cl.conversationMessages} messages, limit ${cl.limit.toLocaleString('en-US')} tokens)`);
L.push('');
L.push('| | median |');
L.push('|---|---|');
L.push(`| First time, cold (worker starts, loads o200k, counts everything) | ${fmt(clip.firstColdMs, 0)} ms |`);
L.push(`| First time, warm worker, empty cache | ${fmt(clip.firstWarmWorkerMs, 0)} ms |`);
L.push(`| Next turn: one new user message, the rest cached (fresh JSON strings) | ${fmt(clip.nextTurnMs)} ms (max ${fmt(clip.nextTurnMaxMs)} ms) |`);
L.push(
  `| Result | dropped ${cl.runs[0].first.dropped}, truncated ${cl.runs[0].first.truncated}, ~${cl.runs[0].first.tokensAfterClip.toLocaleString('en-US')} tokens kept |`,
);
L.push('');
if (result.tokenizers) {
  L.push(tokenizerMarkdown(result.tokenizers).replace(/^### /gm, '#### '));
  L.push('');
}
L.push(tokenWorkerMarkdown(result.tokenWorker, fmt));
L.push('');
const ex = result.extension;
L.push('### 4. Extension');
L.push('');
L.push('| | |');
L.push('|---|---|');
L.push(
  `| dist/extension.js (production, minified) | ${(ex.bundle.extensionBytes / 1024).toFixed(0)} KiB; tokenizer code or ranks inside: ${ex.bundle.tokenizerInExtension ? 'yes ❌' : 'no'} |`,
);
L.push(`| dist/tokenWorker.js (loaded lazily, in a worker thread) | ${(ex.bundle.tokenWorkerBytes / 1024).toFixed(0)} KiB |`);
if (ex.bundle.distExtensionBytes)
  L.push(`| dist/extension.js as the last build in the working tree left it | ${(ex.bundle.distExtensionBytes / 1024).toFixed(0)} KiB |`);
L.push(`| dist/cli.js | ${(ex.bundle.cliBytes / 1024).toFixed(0)} KiB |`);
if (host) {
  L.push(
    `| Activation, real host (activate entry → return), median of ${host.runs} | ${fmt(host.activationMs, 1)} ms${host.samples.length ? ` (module load + activate: ${fmt(median(host.samples.map((s) => s.loadAndActivateMs)), 1)} ms)` : ''} |`,
  );
  L.push(
    `| Tokenizer cold start in the host (worker spawn → first count) | ${fmt(host.tokenizerInHostMs, 0)} ms; longest event-loop gap meanwhile ${fmt(host.tokenizerInHostMaxGapMs, 1)} ms |`,
  );
  if (host.errors.length) L.push(`| Host errors | ${host.errors.join('; ')} |`);
} else {
  L.push('| Activation, real host | not measured (--no-host) |');
}
L.push(`| Tokenizer cold start in plain Node (worker spawn → first count), median of 3 | ${fmt(ex.tokenizerLoad.workerColdStartMs, 0)} ms |`);
L.push('');
const mem = result.memory;
L.push(
  `### 5. Memory (proxy, default settings, ${mem.requests.toLocaleString('en-US')} requests: 3 in 4 non-streaming, 1 in 4 a 50-chunk stream, concurrency 64)`,
);
L.push('');
L.push('| RSS before | RSS after | after 3 s idle | growth | errors |');
L.push('|---|---|---|---|---|');
L.push(`| ${fmt(mem.beforeMB, 1)} MB | ${fmt(mem.afterMB, 1)} MB | ${fmt(mem.afterIdle3sMB, 1)} MB | ${fmt(mem.growthMB, 1)} MB | ${mem.errors} |`);
L.push('');
const acc = result.accounting;
L.push(`### 6. Accounting with a lagging points_history (${acc.lagMs / 1000} s; ${acc.turns} turns each, default settings vs POINTS_WAIT_MS=0, alternating)`);
L.push('');
L.push('| Turn | default settings | POINTS_WAIT_MS=0 | added by accounting |');
L.push('|---|---|---|---|');
L.push(`| tool call, non-streaming (no footer) | ${fmt(acc.medians.tool.on)} ms | ${fmt(acc.medians.tool.off)} ms | ${fmt(acc.toolCallAddedMs)} ms |`);
L.push(`| streamed text with footer (end of stream) | ${fmt(acc.medians.text.on)} ms | ${fmt(acc.medians.text.off)} ms | ${fmt(acc.textAddedMs)} ms |`);
L.push('');
const ab = result.abort;
L.push(`### 9. Client disconnect mid-stream (proxy, default settings, ${ab.runs} runs)`);
L.push('');
L.push('| client closes its socket → the fake upstream sees its request closed | |');
L.push('|---|---|');
L.push(`| median / max | ${fmt(ab.medianMs, 1)} ms / ${fmt(ab.maxMs, 1)} ms |`);
L.push('');
if (lg) {
  const w = lg.warm;
  const c = lg.cold;
  L.push(
    `### 7. Cost ledger at a year of use (${lg.layout.entries.toLocaleString('en-US')} entries, ${(lg.layout.rawBytes / MB).toFixed(0)} MB of JSON: 11 gzipped months as an older version left them (one gzip member each) + the current month; generated in ${fmt(lg.generateMs / 1000, 1)} s; measured in a fresh Node process each)`,
  );
  L.push('');
  L.push('| | |');
  L.push('|---|---|');
  L.push(
    `| Proxy start: \`new Ledger\` (reads nothing) / first entry written on the year-old directory | ${fmt(w.constructMs, 2)} ms / ${fmt(w.firstAppendMs, 1)} ms |`,
  );
  L.push(
    `| After an upgrade: history view opens the first time (the current month counted; ${c.pendingMonths} older months counted in the background) / totals complete (longest event-loop hold meanwhile) / the old months' rewrite in pieces, in the background (${(c.indexBytes / 1024).toFixed(0)} KiB of index) | ${fmt(c.openMs, 0)} ms / ${fmt(c.completeMs / 1000, 1)} s (${fmt(c.countLoopDelayMaxMs, 0)} ms) / ${fmt(c.repieceMs / 1000, 1)} s |`,
  );
  if (lg.tz) {
    L.push(
      `| After a time-zone change: history view opens (the current month counted again; ${lg.tz.pendingMonths} months in the background) / totals complete (longest event-loop hold meanwhile) | ${fmt(lg.tz.openMs, 0)} ms / ${fmt(lg.tz.completeMs / 1000, 1)} s (${fmt(lg.tz.countLoopDelayMaxMs, 0)} ms) |`,
    );
  }
  L.push(`| History view opens (new process; months in pieces, indexed when compressed) | ${fmt(w.openMs, 0)} ms |`);
  L.push(
    `| Filter: busy model (1 in 11) / last 30 days / a week half a year ago | ${fmt(w.filterBusyModelMs, 0)} / ${fmt(w.filterLastMonthMs, 0)} / ${fmt(w.filterOldRangeMs, 0)} ms |`,
  );
  L.push(`| Filter: a model in 1 of 2,000 entries, all year (${w.rareRows} rows found) | ${fmt(w.filterRareModelMs, 0)} ms |`);
  L.push(`| Totals only (model + half a year, from the index) | ${fmt(w.totalsOnlyMs, 1)} ms |`);
  L.push(`| "Load older requests" (next 2,000 rows) | ${fmt(w.loadOlderMs, 0)} ms |`);
  L.push(
    `| Proxy start-up seed of budgets and reconciler: from the index / by reading the month (${w.seedByReadEntries.toLocaleString('en-US')} entries, before) | ${fmt(w.seedMs, 0)} ms, ${fmt(w.seedHeapMB, 1)} MB / ${fmt(w.seedByReadMs, 0)} ms, ${fmt(w.seedByReadHeapMB, 1)} MB |`,
  );
  L.push(
    `| Heap after open / after filters and paging / at the end (GC'd, above the process's start) | ${fmt(w.heapAfterOpenMB, 1)} / ${fmt(w.heapPeakishMB, 1)} / ${fmt(w.heapEndMB, 1)} MB |`,
  );
  L.push(
    `| CSV export of everything, streamed (${w.exportRows.toLocaleString('en-US')} rows, ${(w.exportBytes / MB).toFixed(0)} MB) | ${fmt(w.exportMs / 1000, 1)} s; RSS peak +${fmt(w.exportRssGrowthMB, 0)} MB over its start (+${fmt(w.exportRssMB, 0)} MB over the process's start); event loop delay ≤ ${fmt(w.exportLoopDelayMaxMs, 0)} ms |`,
  );
  L.push('');
}
const he = result.hugeEvent;
L.push(`### 8. One ${he.eventBytes / 1048576} MB SSE event arriving in ${he.chunkBytes / 1024} KB chunks (a broken or hostile upstream)`);
L.push('');
L.push('| SSE parser | event aligner |');
L.push('|---|---|');
L.push(`| ${fmt(he.parserMs, 0)} ms | ${fmt(he.alignerMs, 0)} ms |`);
L.push('');
L.push(`Total bench time ${((Date.now() - started) / 1000).toFixed(0)} s.`);
const md = L.join('\n');

const stamp = result.startedAt.replace(/[:.]/g, '-');
writeFileSync(path.join(RESULTS, `bench-${stamp}.json`), JSON.stringify(result, null, 2));
writeFileSync(path.join(RESULTS, `bench-${stamp}.md`), `${md}\n`);
writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(result, null, 2));
writeFileSync(path.join(RESULTS, 'latest.md'), `${md}\n`);
process.stdout.write(`${md}\n`);
log(`results: bench/results/bench-${stamp}.{json,md}`);
