// Run by scripts/bench/tokenWorker.mjs in a fresh Node process (node --expose-gc): starts the shipped token
// worker bundle the way the counter does, wrapped by a probe that can report the worker isolate's heap
// (after a GC), and measures cold start, memory and counting. Prints one JSON line.
//   argv: <tokenWorker.js> <corpus.json: string[]>
const { Worker } = require('node:worker_threads');
const { readFileSync } = require('node:fs');

const [workerFile, corpusFile] = process.argv.slice(2);
const texts = JSON.parse(readFileSync(corpusFile, 'utf8'));
const MB = 1048576;

// The worker's own message handler is replaced by one that also answers heap probes.
const PROBE = `
const { parentPort } = require('node:worker_threads');
const v8 = require('node:v8');
// The process's --expose-gc reaches the worker; set it again in case it does not.
if (typeof globalThis.gc !== 'function') v8.setFlagsFromString('--expose-gc');
const collect = globalThis.gc ?? require('node:vm').runInNewContext('gc');
const { handle } = require(${JSON.stringify(workerFile)});
parentPort.removeAllListeners('message');
parentPort.on('message', (m) => {
  if (m && m.probe) {
    collect();
    parentPort.postMessage({ probe: true, heapUsed: v8.getHeapStatistics().used_heap_size });
  } else parentPort.postMessage(handle(m));
});`;

function rssMB() {
  global.gc();
  return process.memoryUsage().rss / MB;
}

async function main() {
  const rssBefore = rssMB();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const w = new Worker(PROBE, { eval: true, execArgv: [] });
  const ask = (msg) =>
    new Promise((resolve, reject) => {
      const onMessage = (res) => {
        w.off('error', reject);
        resolve(res);
      };
      w.once('message', onMessage);
      w.once('error', reject);
      w.postMessage(msg);
    });
  const first = await ask({ id: 1, encoding: 'o200k_base', texts: ['hello world'] });
  const coldStartMs = performance.now() - t0;
  // CPU time of the process (both threads) during the cold start: what it costs on an idle machine, whatever the load.
  const cpu = process.cpuUsage(cpu0);
  const coldStartCpuMs = (cpu.user + cpu.system) / 1000;
  if (!first.counts) throw new Error(`worker answered ${JSON.stringify(first)}`);
  const heapAfterLoad = (await ask({ probe: true })).heapUsed / MB;
  const rssAfterLoad = rssMB();

  // The corpus, as requests send it: one message per document batch of 16, without a time budget.
  const counts = [];
  let t1 = performance.now();
  for (let i = 0; i < texts.length; i += 16) {
    const res = await ask({ id: 2 + i, encoding: 'o200k_base', texts: texts.slice(i, i + 16) });
    counts.push(...res.counts);
  }
  const corpusMs = performance.now() - t1;
  // Again (warm JIT; the counter's own cache would answer these, so this is the worker's speed alone).
  t1 = performance.now();
  for (let i = 0; i < texts.length; i += 16) await ask({ id: 100000 + i, encoding: 'o200k_base', texts: texts.slice(i, i + 16) });
  const corpusWarmMs = performance.now() - t1;
  const heapAfterCorpus = (await ask({ probe: true })).heapUsed / MB;
  const rssAfterCorpus = rssMB();

  // 1 MB without a split, with the budget the counter gives the worker by default (0.8 × 5 s).
  const longRuns = {};
  // Random letters from mulberry32 (a short-period generator repeats chunks, which the tokenizer's cache then answers).
  let seed = 7;
  const random = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const letters = Array.from({ length: MB }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
  for (const [name, text] of [
    ['a × 1 MB', 'a'.repeat(MB)],
    ['random letters × 1 MB', letters],
  ]) {
    const t = performance.now();
    const res = await ask({ id: 900000, encoding: 'o200k_base', texts: [text], budgetMs: 4000 });
    longRuns[name] = { ms: performance.now() - t, count: res.counts[0], estimated: (res.estimated ?? []).length > 0 };
  }
  const heapAfterLongRuns = (await ask({ probe: true })).heapUsed / MB;
  await w.terminate();
  process.stdout.write(
    `${JSON.stringify({ coldStartMs, coldStartCpuMs, heapAfterLoad, heapAfterCorpus, heapAfterLongRuns, rssBefore, rssAfterLoad, rssAfterCorpus, corpusMs, corpusWarmMs, longRuns, counts })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
