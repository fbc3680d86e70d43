#!/usr/bin/env node
// Tokenizer benchmark: js-tiktoken (lite + o200k_base, the worker's tokenizer before) against gpt-tokenizer
// (o200k_base, the worker's tokenizer now; raw, and inside the worker's engine, which chunks long runs) on the same ~200k-token corpus (prose, code, JSON, CJK/emoji, a few long runs), plus the
// proxy's own counter (worker + cache) clipping a 200k-token conversation the first time and on the next turn.
//
// Usage: node scripts/bench/tokenizers.mjs [--json] [--out <tsc out dir, default out>] [--tokens N]
// Needs the compiled core (`npx tsc -p tsconfig.test.json`, or `--out out-xyz` for another outDir).
// `runTokenizerBench(options)` returns the result object for a top-level bench script.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const require = createRequire(path.join(root, 'package.json'));

// ───────────────────────────── deterministic corpus ─────────────────────────────

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there ' +
  'one all we their been has when who will more no if out so said what up its about into than them can only other new some could time ' +
  'these two may then do first any my now such like our over man me even most made after also did many before must through back years ' +
  'where much your way well down should because each just those people how too little state good very make world still own see men work ' +
  'long get here between both life being under never day same another know while last might us great old year off come since against ' +
  'request response server client proxy token context model message stream buffer latency throughput configuration extension worker ' +
  'function variable parameter interface implementation deployment repository benchmark measurement conversation assistant developer'
).split(' ');
const IDENTS = 'user id name value items count result options config request response handler buffer index total error data path'.split(' ');
const CJK =
  '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多然于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话';
const EMOJI = ['👍', '🎉', '🚀', '✅', '❌', '🔥', '👨‍💻', '👩🏽‍🔬', '🇯🇵', '😀'];

function pick(r, list) {
  return list[Math.floor(r() * list.length)];
}

function prose(r, words) {
  let out = '';
  let sentence = 0;
  for (let i = 0; i < words; i++) {
    let w = pick(r, WORDS);
    if (sentence === 0) w = w[0].toUpperCase() + w.slice(1);
    out += w;
    sentence++;
    if (sentence > 6 && r() < 0.12) {
      out += r() < 0.85 ? '. ' : r() < 0.5 ? '? ' : '! ';
      sentence = 0;
      if (r() < 0.15) out += '\n\n';
    } else out += r() < 0.06 ? ', ' : ' ';
  }
  if (r() < 0.3) out += ` ${pick(r, EMOJI)}`;
  return out.trim() + '.';
}

function camel(r) {
  const a = pick(r, IDENTS);
  const b = pick(r, IDENTS);
  return a + b[0].toUpperCase() + b.slice(1);
}

function code(r, lines) {
  const out = [];
  while (out.length < lines) {
    const fn = camel(r);
    out.push(`/** ${prose(r, 8)} */`, `export async function ${fn}(${camel(r)}: string, ${camel(r)} = ${Math.floor(r() * 1000)}): Promise<number> {`);
    const body = 3 + Math.floor(r() * 8);
    for (let i = 0; i < body; i++) {
      const indent = '  '.repeat(1 + Math.floor(r() * 3));
      const v = camel(r);
      const kind = r();
      if (kind < 0.3) out.push(`${indent}const ${v} = await ${camel(r)}(${camel(r)}, { timeout: ${Math.floor(r() * 30000)} });`);
      else if (kind < 0.5) out.push(`${indent}if (${v} !== undefined && ${v}.length > ${Math.floor(r() * 64)}) return ${v}.length;`);
      else if (kind < 0.7) out.push(`${indent}// ${prose(r, 6)}`);
      else if (kind < 0.85)
        out.push(`${indent}for (let i = 0; i < ${camel(r)}.length; i++) ${v} += ${camel(r)}[i] * 0x${Math.floor(r() * 65535).toString(16)};`);
      else out.push(`${indent}throw new Error(\`${prose(r, 5)}: \${${v}}\`);`);
    }
    out.push('}', '');
  }
  return out.join('\n');
}

function json(r, records) {
  const rows = [];
  for (let i = 0; i < records; i++) {
    rows.push({
      id: `${Math.floor(r() * 1e9).toString(36)}-${i}`,
      name: `${pick(r, WORDS)} ${pick(r, WORDS)}`,
      score: Math.round(r() * 10000) / 100,
      tags: [pick(r, IDENTS), pick(r, IDENTS)],
      active: r() < 0.5,
      nested: { path: `/srv/${pick(r, IDENTS)}/${pick(r, IDENTS)}.ts`, line: Math.floor(r() * 900) },
    });
  }
  return JSON.stringify(rows, null, 2);
}

function cjk(r, chars) {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out += CJK[Math.floor(r() * CJK.length)];
    if (r() < 0.08) out += r() < 0.7 ? '，' : '。';
  }
  return out + '。';
}

function base64(r, bytes) {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(r() * 256);
  return b.toString('base64');
}

/** Documents of mixed kinds, about `targetTokens` o200k tokens in all (≈ 4 characters per token). */
export function makeCorpus({ targetTokens = 200_000, seed = 1 } = {}) {
  const r = rng(seed);
  const docs = [];
  let chars = 0;
  const targetChars = targetTokens * 3.9;
  const add = (kind, text) => {
    docs.push({ kind, text });
    chars += text.length;
  };
  // A few long runs without a split, as a proxy sees them (dividers, a pasted blob, a degenerate line).
  add('long-run', `Divider:\n${'='.repeat(1500)}\nEnd.`);
  add('long-run', `Blob: ${base64(r, 3000)}`);
  add('long-run', `Degenerate output: ${'a'.repeat(1200)} ${'ab'.repeat(300)}\n${' '.repeat(900)}x`);
  while (chars < targetChars) {
    const k = r();
    if (k < 0.4) add('prose', prose(r, 150 + Math.floor(r() * 900)));
    else if (k < 0.7) add('code', code(r, 20 + Math.floor(r() * 120)));
    else if (k < 0.9) add('json', json(r, 5 + Math.floor(r() * 40)));
    else add('cjk+emoji', `${cjk(r, 100 + Math.floor(r() * 600))} ${pick(r, EMOJI)} ${prose(r, 40)}`);
  }
  return docs;
}

/**
 * A coding-agent conversation of about `targetTokens`: a system prompt, then turns of a user question,
 * assistant tool calls, tool results (code/JSON) and an answer.
 */
export function makeConversation({ targetTokens = 200_000, seed = 7 } = {}) {
  const r = rng(seed);
  const messages = [{ role: 'system', content: `You are a coding assistant.\n${prose(r, 1200)}` }];
  let chars = messages[0].content.length;
  let call = 0;
  const targetChars = targetTokens * 3.9;
  while (chars < targetChars) {
    const user = { role: 'user', content: prose(r, 40 + Math.floor(r() * 300)) };
    messages.push(user);
    chars += user.content.length;
    const steps = 1 + Math.floor(r() * 4);
    for (let s = 0; s < steps; s++) {
      const calls = [];
      const n = r() < 0.7 ? 1 : 2;
      for (let i = 0; i < n; i++) {
        calls.push({
          id: `call_${(call++).toString(36)}`,
          type: 'function',
          function: { name: 'read_file', arguments: JSON.stringify({ path: `src/${camel(r)}.ts` }) },
        });
      }
      messages.push({ role: 'assistant', content: null, tool_calls: calls });
      for (const c of calls) {
        const content = r() < 0.6 ? code(r, 20 + Math.floor(r() * 150)) : json(r, 5 + Math.floor(r() * 30));
        messages.push({ role: 'tool', tool_call_id: c.id, content });
        chars += content.length + 80;
      }
    }
    const answer = { role: 'assistant', content: prose(r, 60 + Math.floor(r() * 400)) };
    messages.push(answer);
    chars += answer.content.length;
  }
  messages.push({ role: 'user', content: 'Now summarise what we changed and what is left to do.' });
  return messages;
}

// ───────────────────────────── measurements ─────────────────────────────

function now() {
  return performance.now();
}

/** Cold load (import + construct + first tiny encode) in a fresh process, median of `runs`. */
function coldLoad(code, runs) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
    results.push(JSON.parse(out.trim().split('\n').pop()));
  }
  results.sort((a, b) => a.ms - b.ms);
  return results[Math.floor(results.length / 2)];
}

const COLD_JS_TIKTOKEN = `
const { performance } = require('node:perf_hooks');
const t0 = performance.now();
const { Tiktoken } = require('js-tiktoken/lite');
const ranks = require('js-tiktoken/ranks/o200k_base');
const t1 = performance.now();
const enc = new Tiktoken(ranks);
enc.encode('hello world', [], []);
const t2 = performance.now();
const m = process.memoryUsage();
console.log(JSON.stringify({ ms: t2 - t0, importMs: t1 - t0, constructMs: t2 - t1, heapMB: m.heapUsed / 1048576, rssMB: m.rss / 1048576 }));
`;

const COLD_GPT_TOKENIZER = `
const { performance } = require('node:perf_hooks');
const t0 = performance.now();
const g = require('gpt-tokenizer/encoding/o200k_base');
const t1 = performance.now();
g.countTokens('hello world');
const t2 = performance.now();
const m = process.memoryUsage();
console.log(JSON.stringify({ ms: t2 - t0, importMs: t1 - t0, constructMs: t2 - t1, heapMB: m.heapUsed / 1048576, rssMB: m.rss / 1048576 }));
`;

function timeCount(docs, fn, runs, before) {
  let best = Number.POSITIVE_INFINITY;
  let counts = [];
  for (let i = 0; i < runs; i++) {
    before?.();
    const t0 = now();
    counts = docs.map((d) => fn(d.text));
    best = Math.min(best, now() - t0);
  }
  return { ms: best, counts };
}

function agreement(a, b) {
  let exact = 0;
  let sa = 0;
  let sb = 0;
  let maxPct = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) exact++;
    sa += a[i];
    sb += b[i];
    if (b[i] > 0) maxPct = Math.max(maxPct, (Math.abs(a[i] - b[i]) / b[i]) * 100);
  }
  return { docs: a.length, exactDocs: exact, totalA: sa, totalB: sb, totalDiffPct: sb ? ((sa - sb) / sb) * 100 : 0, maxDocDiffPct: maxPct };
}

function loadCompiled(outDir) {
  const base = path.resolve(root, outDir, 'src', 'core');
  const files = { tokens: path.join(base, 'tokens', 'index.js'), engine: path.join(base, 'tokens', 'engine.js'), clip: path.join(base, 'clip.js') };
  for (const f of Object.values(files)) {
    if (!existsSync(f)) throw new Error(`${f} not found: compile first (npx tsc -p tsconfig.test.json${outDir === 'out' ? '' : ` --outDir ${outDir}`})`);
  }
  return { tokens: require(files.tokens), engine: require(files.engine), clip: require(files.clip) };
}

export async function runTokenizerBench(options = {}) {
  const { outDir = 'out', targetTokens = 200_000, coldRuns = 3, runs = 2, log = () => {} } = options;
  // `modules`: {tokens, engine, clip} already loaded (scripts/bench.mjs passes its own build).
  const compiled = options.modules ?? loadCompiled(outDir);
  const result = { node: process.version, cpus: (await import('node:os')).cpus().length, targetTokens };

  log('cold loads…');
  result.cold = { jsTiktoken: coldLoad(COLD_JS_TIKTOKEN, coldRuns), gptTokenizer: coldLoad(COLD_GPT_TOKENIZER, coldRuns) };

  log('corpus…');
  const docs = makeCorpus({ targetTokens });
  const bytes = docs.reduce((s, d) => s + Buffer.byteLength(d.text), 0);
  const chars = docs.reduce((s, d) => s + d.text.length, 0);
  result.corpus = {
    docs: docs.length,
    chars,
    bytes,
    kinds: Object.fromEntries([...new Set(docs.map((d) => d.kind))].map((k) => [k, docs.filter((d) => d.kind === k).length])),
  };

  const { Tiktoken } = require('js-tiktoken/lite');
  const jsEnc = new Tiktoken(require('js-tiktoken/ranks/o200k_base'));
  const gpt = require('gpt-tokenizer/encoding/o200k_base');
  const engine = compiled.engine.createTokenEngine();
  engine.load('o200k_base');
  const noSpecial = { disallowedSpecial: new Set() };

  log('throughput: js-tiktoken…');
  const js = timeCount(docs, (t) => jsEnc.encode(t, [], []).length, runs);
  log('throughput: the worker engine (gpt-tokenizer, long runs chunked)…');
  const guarded = timeCount(docs, (t) => engine.count(t, 'o200k_base').count, runs);
  log('throughput: gpt-tokenizer…');
  const gp = timeCount(
    docs,
    (t) => gpt.countTokens(t, noSpecial),
    runs,
    () => gpt.clearMergeCache(),
  );
  const gpWarm = timeCount(docs, (t) => gpt.countTokens(t, noSpecial), 1);
  const ordinary = docs.map((d, i) => (d.kind === 'long-run' ? -1 : i)).filter((i) => i >= 0);
  const sub = (arr) => ordinary.map((i) => arr[i]);
  const mbps = (ms) => bytes / 1048576 / (ms / 1000);
  result.throughput = {
    jsTiktoken: { ms: js.ms, MBps: mbps(js.ms), tokens: js.counts.reduce((a, b) => a + b, 0) },
    workerEngine: { ms: guarded.ms, MBps: mbps(guarded.ms), tokens: guarded.counts.reduce((a, b) => a + b, 0) },
    gptTokenizer: { ms: gp.ms, MBps: mbps(gp.ms), tokens: gp.counts.reduce((a, b) => a + b, 0), warmCacheMs: gpWarm.ms },
  };
  const longRunMs = {};
  for (const [i, d] of docs.entries()) {
    if (d.kind !== 'long-run') continue;
    const t0 = now();
    jsEnc.encode(d.text, [], []);
    const t1 = now();
    engine.count(d.text, 'o200k_base');
    const t2 = now();
    gpt.clearMergeCache();
    gpt.countTokens(d.text, noSpecial);
    const t3 = now();
    longRunMs[`doc${i}`] = { chars: d.text.length, jsTiktoken: t1 - t0, guarded: t2 - t1, gptTokenizer: t3 - t2 };
  }
  result.longRuns = longRunMs;
  result.agreement = {
    gptTokenizerVsJsTiktoken: agreement(gp.counts, js.counts),
    gptTokenizerVsJsTiktokenOrdinary: agreement(sub(gp.counts), sub(js.counts)),
    guardedVsJsTiktoken: agreement(guarded.counts, js.counts),
    guardedVsJsTiktokenOrdinary: agreement(sub(guarded.counts), sub(js.counts)),
  };

  log('counter + clip…');
  const conversation = makeConversation({ targetTokens });
  const convTokens = conversation.reduce(
    (s, m) => s + 4 + (m.content ? jsEnc.encode(m.content, [], []).length : 0) + (m.tool_calls ? jsEnc.encode(JSON.stringify(m.tool_calls), [], []).length : 0),
    3,
  );
  const limit = Math.floor(targetTokens * 0.64);
  const { createTokenCounter } = compiled.tokens;
  const { clipMessages } = compiled.clip;

  // Cold: a new counter, the worker starts inside the first clip.
  const counter = createTokenCounter({ timeoutMs: 30_000 });
  let t0 = now();
  const first = await clipMessages(conversation, { limit, encoding: 'o200k_base' }, counter);
  const firstMs = now() - t0;
  const coldStartMs = counter.stats().lastColdStartMs;
  const next = [...conversation, { role: 'assistant', content: prose(rng(99), 120) }, { role: 'user', content: 'And the tests?' }];
  t0 = now();
  const second = await clipMessages(next, { limit, encoding: 'o200k_base' }, counter);
  const secondMs = now() - t0;
  // Same turn again (all cached): the floor of a clip.
  const nextSamples = [];
  for (let i = 0; i < 5; i++) {
    t0 = now();
    await clipMessages(next, { limit, encoding: 'o200k_base' }, counter);
    nextSamples.push(now() - t0);
  }
  nextSamples.sort((a, b) => a - b);
  const statsAfter = counter.stats();
  await counter.dispose();

  // Warm worker, empty cache: counting cost without the cold start.
  const counter2 = createTokenCounter({ timeoutMs: 30_000 });
  await counter2.count(['warm up']);
  t0 = now();
  await clipMessages(conversation, { limit, encoding: 'o200k_base' }, counter2);
  const warmFirstMs = now() - t0;
  const s2 = counter2.stats();
  await counter2.dispose();

  // Main-thread block while the worker counts: longest gap of a 1 ms interval during a cold clip.
  const counter3 = createTokenCounter({ timeoutMs: 30_000 });
  let last = now();
  let maxGap = 0;
  const iv = setInterval(() => {
    const n = now();
    maxGap = Math.max(maxGap, n - last);
    last = n;
  }, 1);
  await clipMessages(conversation, { limit, encoding: 'o200k_base' }, counter3);
  clearInterval(iv);
  await counter3.dispose();

  result.counter = {
    conversation: { messages: conversation.length, tokens: convTokens, limit },
    workerColdStartMs: coldStartMs,
    firstClipColdMs: firstMs,
    firstClipWarmWorkerMs: warmFirstMs,
    workerCharsPerSec: s2.charsSent / (warmFirstMs / 1000),
    workerTokensPerSec: convTokens / (warmFirstMs / 1000),
    nextTurnClipMs: secondMs,
    repeatClipMedianMs: nextSamples[Math.floor(nextSamples.length / 2)],
    mainThreadMaxGapMs: maxGap,
    first: { dropped: first.droppedMessages, truncated: first.truncatedMessages, tokens: first.tokens, kept: first.messages.length },
    next: { dropped: second.droppedMessages, truncated: second.truncatedMessages, tokens: second.tokens, kept: second.messages.length },
    cache: { hits: statsAfter.cacheHits, misses: statsAfter.cacheMisses, entries: statsAfter.cacheEntries, chars: statsAfter.cacheChars },
  };
  return result;
}

const f1 = (n) => (typeof n === 'number' ? n.toFixed(1) : String(n));
const f2 = (n) => (typeof n === 'number' ? n.toFixed(2) : String(n));

export function formatMarkdown(r) {
  const t = r.throughput;
  const a = r.agreement;
  const c = r.counter;
  const lines = [
    `### Tokenizers (o200k_base) — Node ${r.node}, ${r.cpus} CPUs`,
    '',
    `Corpus: ${r.corpus.docs} documents, ${(r.corpus.bytes / 1048576).toFixed(2)} MB, ${t.jsTiktoken.tokens.toLocaleString('en-US')} tokens (${Object.entries(
      r.corpus.kinds,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
    '',
    '| | js-tiktoken (lite + o200k) | worker engine (gpt-tokenizer, long runs chunked) | gpt-tokenizer |',
    '|---|---|---|---|',
    `| Cold load (fresh process, import + construct + first encode) | ${f1(r.cold.jsTiktoken.ms)} ms (construct ${f1(r.cold.jsTiktoken.constructMs)} ms) | same as gpt-tokenizer, in the worker | ${f1(r.cold.gptTokenizer.ms)} ms |`,
    `| Heap / RSS after load | ${f1(r.cold.jsTiktoken.heapMB)} / ${f1(r.cold.jsTiktoken.rssMB)} MB | | ${f1(r.cold.gptTokenizer.heapMB)} / ${f1(r.cold.gptTokenizer.rssMB)} MB |`,
    `| Corpus time | ${f1(t.jsTiktoken.ms)} ms | ${f1(t.workerEngine.ms)} ms | ${f1(t.gptTokenizer.ms)} ms (${f1(t.gptTokenizer.warmCacheMs)} ms with its merge cache warm) |`,
    `| Throughput | ${f2(t.jsTiktoken.MBps)} MB/s | ${f2(t.workerEngine.MBps)} MB/s | ${f2(t.gptTokenizer.MBps)} MB/s |`,
    `| Tokens | ${t.jsTiktoken.tokens} | ${t.workerEngine.tokens} | ${t.gptTokenizer.tokens} |`,
    `| Agreement with js-tiktoken, all docs | — | ${a.guardedVsJsTiktoken.exactDocs}/${a.guardedVsJsTiktoken.docs} docs exact, total ${f2(a.guardedVsJsTiktoken.totalDiffPct)} % | ${a.gptTokenizerVsJsTiktoken.exactDocs}/${a.gptTokenizerVsJsTiktoken.docs} docs exact, total ${f2(a.gptTokenizerVsJsTiktoken.totalDiffPct)} % |`,
    `| Agreement, ordinary docs (no long runs) | — | ${a.guardedVsJsTiktokenOrdinary.exactDocs}/${a.guardedVsJsTiktokenOrdinary.docs} exact | ${a.gptTokenizerVsJsTiktokenOrdinary.exactDocs}/${a.gptTokenizerVsJsTiktokenOrdinary.docs} exact |`,
    '',
    '| Long run | chars | js-tiktoken | worker engine | gpt-tokenizer |',
    '|---|---|---|---|---|',
    ...Object.entries(r.longRuns).map(([k, v]) => `| ${k} | ${v.chars} | ${f1(v.jsTiktoken)} ms | ${f1(v.guarded)} ms | ${f1(v.gptTokenizer)} ms |`),
    '',
    `### Proxy counter + clip: ${c.conversation.messages} messages, ${c.conversation.tokens.toLocaleString('en-US')} tokens, limit ${c.conversation.limit.toLocaleString('en-US')}`,
    '',
    '| | |',
    '|---|---|',
    `| Worker cold start (spawn → first answer, includes loading o200k) | ${f1(c.workerColdStartMs)} ms |`,
    `| First clip, cold worker | ${f1(c.firstClipColdMs)} ms |`,
    `| First clip, warm worker, empty cache | ${f1(c.firstClipWarmWorkerMs)} ms (${Math.round(c.workerTokensPerSec).toLocaleString('en-US')} tokens/s, ${(c.workerCharsPerSec / 1e6).toFixed(2)} M chars/s) |`,
    `| Next turn (2 new messages, rest cached) | ${f2(c.nextTurnClipMs)} ms |`,
    `| Same request again (all cached), median | ${f2(c.repeatClipMedianMs)} ms |`,
    `| Longest main-thread gap during a cold clip (1 ms interval) | ${f1(c.mainThreadMaxGapMs)} ms |`,
    `| Result | first: dropped ${c.first.dropped}, truncated ${c.first.truncated}, ~${c.first.tokens} tokens; next: dropped ${c.next.dropped}, truncated ${c.next.truncated}, ~${c.next.tokens} tokens |`,
  ];
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const outIdx = args.indexOf('--out');
  const tokIdx = args.indexOf('--tokens');
  const result = await runTokenizerBench({
    outDir: outIdx >= 0 ? args[outIdx + 1] : 'out',
    targetTokens: tokIdx >= 0 ? Number(args[tokIdx + 1]) : 200_000,
    log: json ? () => {} : (m) => process.stderr.write(`${m}\n`),
  });
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${formatMarkdown(result)}\n`);
}
