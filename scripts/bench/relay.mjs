// Sections 1, 2 and 5 of the bench: added latency (non-streaming), streaming (TTFB, total, throughput,
// per-chunk delay) and the proxy's memory over 10,000 requests. Every party runs in its own process on
// loopback: the fake upstream, the floor pass-through, the proxy (the production cli bundle, default
// settings except where noted) and this process as the client.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedLoop, eventCounter, makeAgent, post, stampReader } from './load.mjs';
import { fmt, median, medianOf, percentile, ratio, summarize } from './stats.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

function forkChild(file, args) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(HERE, file), args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve({ child, url: m.url }));
    child.once('exit', (code) => reject(new Error(`${file} exited with code ${code}`)));
  });
}

/** Starts `node cli.js` (the shipped headless proxy) and resolves with its URL from the banner line. */
export function startProxy(cli, upstream, env, logFile, nodeArgs = []) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-bench-'));
  const log = openSync(logFile, 'w');
  // cwd = the temp dir: no stray .env is read.
  const child = spawn(process.execPath, [...nodeArgs, cli], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', log],
    env: {
      PATH: process.env.PATH,
      POE_API_KEY: 'test-poe-key',
      POE_BASE_URL: upstream,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      // The bench is one client sending far more than a person does: the per-client limits would refuse it.
      RATE_LIMIT_RPM: '0',
      MAX_CONCURRENT: '0',
      ...env,
    },
  });
  closeSync(log);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve({ child, url: m[1], dataDir, pid: child.pid });
    });
    child.once('exit', (code) => reject(new Error(`proxy exited with code ${code}; see ${logFile}`)));
  });
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc, 100 Hz ticks). */
export function cpuMs(pid) {
  if (!pid) return Number.NaN;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

export function rssMB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

const NON_STREAM_BODY = JSON.stringify({
  model: 'GPT-4.1',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Answer briefly.' },
    { role: 'user', content: 'Say hello in one short sentence, then tell me what a proxy is in one more sentence.' },
  ],
  stream: false,
});

const streamBody = (chunks, delayMs = 0, stamp = false) =>
  JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'Stream something.' }], stream: true, bench: { chunks, delayMs, stamp } });

export async function startTopology({ build, resultsDir, proxyNodeArgs = [] }) {
  const fake = await forkChild('fake-child.cjs', [build.support]);
  const floor = await forkChild('floor-proxy.cjs', [fake.url]);
  const proxy = await startProxy(build.cli, fake.url, {}, path.join(resultsDir, 'proxy-default.log'), proxyNodeArgs);
  // Same proxy without waiting for Poe's usage history (points estimated): the relay machinery alone.
  const proxyNoPoints = await startProxy(build.cli, fake.url, { POINTS_WAIT_MS: '0' }, path.join(resultsDir, 'proxy-nopoints.log'), proxyNodeArgs);
  const targets = { direct: fake.url, floor: floor.url, proxy: proxy.url, proxyNoPoints: proxyNoPoints.url };
  // Whose CPU to charge per request: the relay process of each path (none for direct).
  const pids = { direct: undefined, floor: floor.child.pid, proxy: proxy.pid, proxyNoPoints: proxyNoPoints.pid };
  // Sanity: every path answers a chat request.
  for (const [name, url] of Object.entries(targets)) {
    const r = await post(url, undefined, NON_STREAM_BODY);
    if (r.status !== 200) throw new Error(`${name} (${url}) answered ${r.status}`);
  }
  return {
    targets,
    pids,
    fakePid: fake.child.pid,
    proxyPid: proxy.pid,
    async stop() {
      for (const c of [proxy.child, proxyNoPoints.child]) c.kill('SIGTERM');
      for (const c of [fake.child, floor.child]) c.disconnect();
      await new Promise((r) => setTimeout(r, 300));
      for (const d of [proxy.dataDir, proxyNoPoints.dataDir]) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * Section 1, one run: p50/p99 per target at concurrency 1 and 64. The targets take turns in blocks
 * (round robin, `blocks` per concurrency), so a swing in the machine's load hits every path alike.
 */
export async function latencyRun(targets, pids, { c1Total, c64Total, warmup, blocks = 8 }) {
  const out = {};
  const names = Object.keys(targets);
  for (const [label, concurrency, total] of [
    ['c1', 1, c1Total],
    ['c64', 64, c64Total],
  ]) {
    const agents = Object.fromEntries(names.map((n) => [n, makeAgent(concurrency)]));
    const acc = Object.fromEntries(names.map((n) => [n, { latencies: [], errors: 0, elapsedMs: 0, cpuMs: 0 }]));
    for (const n of names) await closedLoop(targets[n], { body: NON_STREAM_BODY, concurrency, total: warmup, agent: agents[n] });
    const per = Math.max(concurrency, Math.ceil(total / blocks));
    for (let b = 0; b < blocks; b++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(b + k) % names.length];
        const cpu0 = cpuMs(pids[n]);
        const r = await closedLoop(targets[n], { body: NON_STREAM_BODY, concurrency, total: per, agent: agents[n] });
        const a = acc[n];
        a.cpuMs += cpuMs(pids[n]) - cpu0;
        a.latencies.push(...r.latencies);
        a.errors += r.errors;
        a.elapsedMs += r.elapsedMs;
      }
    }
    for (const n of names) {
      agents[n].destroy();
      const a = acc[n];
      out[n] ??= {};
      out[n][label] = {
        ...summarize(a.latencies),
        errors: a.errors,
        rps: (a.latencies.length / a.elapsedMs) * 1000,
        relayCpuUsPerReq: (a.cpuMs * 1000) / a.latencies.length,
      };
    }
  }
  return out;
}

/** Section 2, one run. */
export async function streamingRun(targets, pids, { chunks, singleRepeats, concurrentStreams, stampStreams, stampChunks, stampDelayMs }, rotate = 0) {
  const out = {};
  // Each run starts with another target, so a load swing does not always hit the same one.
  const entries = Object.entries(targets);
  const order = entries.map((_, i) => entries[(i + rotate) % entries.length]);
  for (const [name, url] of order) {
    const agent = makeAgent(concurrentStreams);
    // One 2,000-chunk stream at a time: time to first byte and to the end.
    const ttfb = [];
    const total = [];
    for (let i = 0; i < singleRepeats; i++) {
      const r = await post(url, agent, streamBody(chunks));
      if (r.status !== 200) throw new Error(`${name}: stream answered ${r.status}`);
      ttfb.push(r.ttfbMs);
      total.push(r.totalMs);
    }
    // 100 concurrent 2,000-chunk streams, as fast as the fake can write them.
    // `contentDoneMs`: when the last stream had delivered `chunks` events (its content), before the proxy's
    // end-of-stream work (footer, waiting for the points) that is latency, not relay throughput.
    const counters = [];
    const cpu0 = cpuMs(pids[name]);
    const t0 = performance.now();
    let contentDone = 0;
    await Promise.all(
      Array.from({ length: concurrentStreams }, () => {
        const c = eventCounter();
        counters.push(c);
        let seen = false;
        return post(url, agent, streamBody(chunks), (b, t) => {
          c.push(b);
          if (!seen && c.events >= chunks) {
            seen = true;
            contentDone = Math.max(contentDone, t);
          }
        });
      }),
    );
    const elapsed = performance.now() - t0;
    const relayCpuMs = cpuMs(pids[name]) - cpu0;
    const contentMs = contentDone - t0;
    const events = counters.reduce((s, c) => s + c.events, 0);
    // Paced streams whose chunks carry the fake's write time: how long each chunk took to arrive.
    const readers = [];
    await Promise.all(
      Array.from({ length: stampStreams }, () => {
        const s = stampReader();
        readers.push(s);
        return post(url, agent, streamBody(stampChunks, stampDelayMs, true), (b) => s.push(b));
      }),
    );
    const delays = readers.flatMap((r) => r.delays);
    agent.destroy();
    out[name] = {
      ttfbMs: median(ttfb),
      totalMs: median(total),
      throughput: {
        streams: concurrentStreams,
        elapsedMs: elapsed,
        contentMs,
        chunksPerSec: ((concurrentStreams * chunks) / contentMs) * 1000,
        chunksPerSecWholeStreams: ((concurrentStreams * chunks) / elapsed) * 1000,
        relayCpuUsPerChunk: (relayCpuMs * 1000) / (concurrentStreams * chunks),
        events,
      },
      chunkDelay: {
        chunks: delays.length,
        expected: stampStreams * stampChunks,
        p50: percentile(delays, 50),
        p99: percentile(delays, 99),
        max: delays.length ? Math.max(...delays) : Number.NaN,
      },
    };
  }
  return out;
}

/** Section 5: the default proxy's RSS before and after 10,000 requests (3 in 4 non-streaming, 1 in 4 a 50-chunk stream). */
export async function memoryRun(url, pid, { requests = 10_000, concurrency = 64 } = {}) {
  const agent = makeAgent(concurrency);
  await closedLoop(url, { body: NON_STREAM_BODY, concurrency, total: 200, agent });
  await new Promise((r) => setTimeout(r, 500));
  const before = rssMB(pid);
  let issued = 0;
  let errors = 0;
  const small = streamBody(50);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < requests) {
        const i = issued++;
        const r = await post(url, agent, i % 4 === 3 ? small : NON_STREAM_BODY);
        if (r.status !== 200) errors++;
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const after = rssMB(pid);
  await new Promise((r) => setTimeout(r, 3000));
  const afterIdle = rssMB(pid);
  agent.destroy();
  return { requests, errors, elapsedMs, beforeMB: before, afterMB: after, afterIdle3sMB: afterIdle, growthMB: after - before };
}

/** `--relay-only`: sections 1 and 2 with the relay's CPU per request and per chunk against the bare pass-through's. */
export function relayOnlyMarkdown(result, { LAT, STREAM }) {
  const paths = ['direct', 'floor', 'proxyNoPoints', 'proxy'];
  const L = [
    `## Relay bench — ${result.startedAt}`,
    '',
    `Load average at start ${result.machine.loadavg.map((x) => x.toFixed(2)).join(' / ')}; medians over ${result.latencyRuns.length} run(s).`,
    '',
  ];
  for (const c of ['c1', 'c64']) {
    L.push(
      `### Non-streaming, ${c} (${c === 'c1' ? LAT.c1Total : LAT.c64Total} requests per path per run)`,
      '',
      '| Path | p50 | p99 | relay CPU / request | vs floor |',
      '|---|---|---|---|---|',
    );
    const floor = medianOf(result.latencyRuns, `floor.${c}.relayCpuUsPerReq`);
    for (const p of paths) {
      const cpu = medianOf(result.latencyRuns, `${p}.${c}.relayCpuUsPerReq`);
      const direct = p === 'direct';
      L.push(
        `| ${p} | ${fmt(medianOf(result.latencyRuns, `${p}.${c}.p50`))} ms | ${fmt(medianOf(result.latencyRuns, `${p}.${c}.p99`))} ms | ${direct ? '—' : `${fmt(cpu, 0)} µs`} | ${direct ? '—' : `${fmt(ratio(cpu, floor))}×`} |`,
      );
    }
    L.push('');
  }
  L.push(
    `### Streaming (${STREAM.chunks}-chunk streams, ${STREAM.concurrentStreams} at once)`,
    '',
    '| Path | chunks/s | relay CPU / chunk | vs floor |',
    '|---|---|---|---|',
  );
  const floorChunk = medianOf(result.streamingRuns, 'floor.throughput.relayCpuUsPerChunk');
  for (const p of paths) {
    const cpu = medianOf(result.streamingRuns, `${p}.throughput.relayCpuUsPerChunk`);
    const direct = p === 'direct';
    L.push(
      `| ${p} | ${fmt(medianOf(result.streamingRuns, `${p}.throughput.chunksPerSec`), 0)} | ${direct ? '—' : `${fmt(cpu, 2)} µs`} | ${direct ? '—' : `${fmt(ratio(cpu, floorChunk))}×`} |`,
    );
  }
  return L.join('\n');
}
