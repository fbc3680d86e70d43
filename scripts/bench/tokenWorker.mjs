// Section 3b: the token worker as it ships (the production `tokenWorker.js` the bench built), each run in a
// fresh Node process (scripts/bench/token-worker-child.cjs): cold start (spawn → first count, o200k loaded
// inside; wall and CPU time), the heap of the worker's isolate after a GC (after load, after counting the corpus, after two
// 1 MB runs without a split), the process's RSS growth, its counting speed, and whether its counts on the
// tokenizer corpus are identical to the references: js-tiktoken's own encode(), and the worker engine
// driven by js-tiktoken (`test/support/jsTiktoken.ts`: what the worker counted before it used gpt-tokenizer).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';
import { makeCorpus } from './tokenizers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const require = createRequire(import.meta.url);

function sameCounts(a, b) {
  let exact = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) exact++;
    sa += a[i];
    sb += b[i];
  }
  return { docs: a.length, exactDocs: exact, total: sa, referenceTotal: sb };
}

export async function tokenWorkerRuns(build, { runs = 3, log = () => {} } = {}) {
  const docs = makeCorpus({ targetTokens: 200_000 }).map((d) => d.text);
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const corpusFile = path.join(dir, 'token-corpus.json');
  writeFileSync(corpusFile, JSON.stringify(docs));
  const workerFile = path.join(build.dir, 'tokenWorker.js');
  const samples = [];
  for (let i = 0; i < runs; i++) {
    log(`token worker run ${i + 1}/${runs}`);
    const out = execFileSync(process.execPath, ['--expose-gc', path.join(HERE, 'token-worker-child.cjs'), workerFile, corpusFile], {
      encoding: 'utf8',
      maxBuffer: 64 * 1048576,
      timeout: 900_000,
    });
    samples.push(JSON.parse(out.trim().split('\n').pop()));
  }
  const m = (f) => median(samples.map(f));
  const bytes = docs.reduce((s, t) => s + Buffer.byteLength(t), 0);

  // References, computed here.
  const support = require(build.support);
  const { Tiktoken } = require('js-tiktoken/lite');
  const jsEnc = new Tiktoken(require('js-tiktoken/ranks/o200k_base'));
  const raw = docs.map((t) => jsEnc.encode(t, [], []).length);
  const before = support.jsTiktokenEngine ? support.jsTiktokenEngine() : support.createTokenEngine();
  const guarded = docs.map((t) => before.count(t, 'o200k_base').count);
  const counts = samples[0].counts;
  return {
    runs,
    corpus: { docs: docs.length, bytes },
    workerBytes: build.sizes.tokenWorker,
    coldStartMs: m((s) => s.coldStartMs),
    coldStartSamples: samples.map((s) => s.coldStartMs),
    coldStartCpuMs: m((s) => s.coldStartCpuMs),
    heapAfterLoadMB: m((s) => s.heapAfterLoad),
    heapAfterCorpusMB: m((s) => s.heapAfterCorpus),
    heapAfterLongRunsMB: m((s) => s.heapAfterLongRuns),
    rssGrowthAfterLoadMB: m((s) => s.rssAfterLoad - s.rssBefore),
    rssGrowthAfterCorpusMB: m((s) => s.rssAfterCorpus - s.rssBefore),
    corpusMs: m((s) => s.corpusMs),
    corpusWarmMs: m((s) => s.corpusWarmMs),
    MBps: bytes / 1048576 / (m((s) => s.corpusWarmMs) / 1000),
    longRuns: Object.fromEntries(
      Object.keys(samples[0].longRuns).map((k) => [
        k,
        { ms: m((s) => s.longRuns[k].ms), count: samples[0].longRuns[k].count, estimated: samples.some((s) => s.longRuns[k].estimated) },
      ]),
    ),
    vsJsTiktoken: sameCounts(counts, raw),
    vsPreviousWorker: sameCounts(counts, guarded),
  };
}

export function tokenWorkerMarkdown(w, fmt) {
  const L = [];
  L.push(`#### The token worker as shipped (dist/tokenWorker.js, ${(w.workerBytes / 1048576).toFixed(2)} MiB; fresh process each, median of ${w.runs})`);
  L.push('');
  L.push('| | |');
  L.push('|---|---|');
  L.push(`| Cold start (spawn → first count, o200k loaded) | ${fmt(w.coldStartMs, 0)} ms (${w.coldStartSamples.map((x) => fmt(x, 0)).join(' / ')}) |`);
  L.push(`| CPU time of that cold start (both threads: what it takes on an idle machine) | ${fmt(w.coldStartCpuMs, 0)} ms |`);
  L.push(
    `| Worker heap after a GC: loaded / after the corpus / after two 1 MB runs | ${fmt(w.heapAfterLoadMB, 1)} / ${fmt(w.heapAfterCorpusMB, 1)} / ${fmt(w.heapAfterLongRunsMB, 1)} MB |`,
  );
  L.push(`| Process RSS growth: loaded / after the corpus | ${fmt(w.rssGrowthAfterLoadMB, 1)} / ${fmt(w.rssGrowthAfterCorpusMB, 1)} MB |`);
  L.push(
    `| Corpus (${w.corpus.docs} docs, ${(w.corpus.bytes / 1048576).toFixed(2)} MB) in the worker: first / again | ${fmt(w.corpusMs, 0)} / ${fmt(w.corpusWarmMs, 0)} ms (${fmt(w.MBps, 1)} MB/s) |`,
  );
  for (const [k, v] of Object.entries(w.longRuns))
    L.push(
      `| ${k} without a split (4 s budget) | ${fmt(v.ms, 0)} ms, ${v.count.toLocaleString('en-US')} tokens${v.estimated ? ', partly estimated' : ', counted'} |`,
    );
  L.push(
    `| Counts identical to js-tiktoken encode() | ${w.vsJsTiktoken.exactDocs}/${w.vsJsTiktoken.docs} docs (total ${w.vsJsTiktoken.total} vs ${w.vsJsTiktoken.referenceTotal}) |`,
  );
  L.push(
    `| Counts identical to the js-tiktoken worker engine (before) | ${w.vsPreviousWorker.exactDocs}/${w.vsPreviousWorker.docs} docs (total ${w.vsPreviousWorker.total} vs ${w.vsPreviousWorker.referenceTotal}) |`,
  );
  return L.join('\n');
}
