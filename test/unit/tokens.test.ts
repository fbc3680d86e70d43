import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTokenEngine } from '../../src/core/tokens/engine';
import { createTokenCounter, encodingForModel, estimateTokens, MAX_PIECE_BYTES, utf8Length, type ManagedTokenCounter } from '../../src/core/tokens';
import { TokenCountCache } from '../../src/core/tokens/lru';
import { jsTiktoken, jsTiktokenCount as refCount, jsTiktokenEngine } from '../support/jsTiktoken';
import { waitFor } from '../support/wait';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gptTokenizer = require('gpt-tokenizer/encoding/o200k_base') as { countTokens(text: string, opts?: { disallowedSpecial?: Set<string> }): number };

const tokensDir = path.resolve(__dirname, '../../src/core/tokens');
const realWorker = path.join(tokensDir, 'worker.js');
const indexModule = path.join(tokensDir, 'index.js');

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randomLetters(n: number, seed = 1): string {
  const r = seeded(seed);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(r() * 26));
  return s;
}

const SAMPLES: Record<string, string> = {
  english: "The quick brown fox jumps over the lazy dog. It's a well-known pangram; we've used it for years, haven't we?\n\nNew paragraph.",
  code: 'export async function fetchUser(id: string): Promise<User> {\n  const res = await fetch(`/api/users/${id}`, { headers: { accept: "application/json" } });\n  if (!res.ok) throw new Error(`HTTP ${res.status}`);\n  return (await res.json()) as User;\n}\n\t\t// tabs and    spaces   \r\n',
  json: JSON.stringify({ id: 123456789, name: 'Zoë', tags: ['a', 'b'], nested: { deep: [1.5, -2e10, null, true] } }, null, 2),
  cjk: '你好，世界。这是一个测试句子，没有空格的中文文本也要正确计算。日本語のテキストも、ひらがなとカタカナと漢字を含みます。한국어 문장도 있습니다.',
  emoji: 'Emoji 👍🏽 👨‍👩‍👧‍👦 🎉🚀 🇯🇵 and accents: café naïve Ωμέγα Привет мир ١٢٣ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  whitespace: '   leading\n\n\n   \t  trailing   \n' + ' '.repeat(70) + 'x' + '\n'.repeat(30),
  numbers: '1234567890 3.14159 1e-7 0xdeadbeef 2025-01-01T00:00:00Z',
  // pieces close to (but within) the bound stay exact
  nearBound: `${'='.repeat(MAX_PIECE_BYTES)} ${'é'.repeat(MAX_PIECE_BYTES / 2)} ${'的'.repeat(Math.floor(MAX_PIECE_BYTES / 3))}`,
  longMixed: 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(400) + '\n```ts\nconst x = 1;\n```\n'.repeat(300),
};

/** Runs without a pre-tokenizer split, as a proxy sees them (dividers, pasted blobs, degenerate output). */
const LONG_RUNS: Record<string, string> = {
  randomLetters: randomLetters(3000, 5),
  sameLetter: 'a'.repeat(4000),
  divider: `Divider:\n${'='.repeat(1500)}\nEnd.`,
  spaces: `${' '.repeat(900)}x`,
  pairs: `Degenerate: ${'ab'.repeat(300)} ${'Ab'.repeat(400)}`,
  cjk: '的'.repeat(500),
  accents: 'é'.repeat(600),
  emoji: '🎉'.repeat(300),
  mixed: `${SAMPLES.english} ${randomLetters(1200, 3)} ${SAMPLES.code}`,
};

/**
 * Counts a promise's event-loop turns while it is pending: a count computed on the main thread (blocking,
 * then resolving at once) sees none, a count answered by the worker sees the loop keep turning.
 */
async function loopTurnsWhile<T>(promise: Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let beating = true;
  const beat = (): void => {
    if (!beating) return;
    turns++;
    setImmediate(beat);
  };
  setImmediate(beat);
  try {
    return { value: await promise, turns };
  } finally {
    beating = false;
  }
}

/** Writes a worker script that wraps the real worker (or replaces it). */
function fakeWorker(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, body);
  return file;
}

describe('tokens', function () {
  this.timeout(60_000);
  const counters: ManagedTokenCounter[] = [];
  const counter = (opts?: Parameters<typeof createTokenCounter>[0]): ManagedTokenCounter => {
    const c = createTokenCounter({ timeoutMs: 30_000, ...opts });
    counters.push(c);
    return c;
  };
  let tmp: string;

  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'poe-tokens-'));
  });
  after(async () => {
    await Promise.all(counters.map((c) => c.dispose()));
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('helpers', () => {
    it('utf8Length counts UTF-8 bytes', () => {
      assert.equal(utf8Length(''), 0);
      assert.equal(utf8Length('abc'), 3);
      assert.equal(utf8Length('é'), 2);
      assert.equal(utf8Length('€'), 3);
      assert.equal(utf8Length('😀'), 4);
      assert.equal(utf8Length('\ud800'), 3); // lone surrogate → U+FFFD
    });

    it('estimateTokens is positive and never above the byte length', () => {
      for (const s of Object.values(SAMPLES)) {
        const e = estimateTokens(s);
        assert.ok(e > 0 && e <= utf8Length(s), `${e} for ${s.length} chars`);
      }
      assert.equal(estimateTokens(''), 0);
      assert.equal(estimateTokens('a'), 1);
    });

    it('encodingForModel: o200k by default, the registry value when given, cl100k for GPT-3.5/GPT-4 classics', () => {
      assert.equal(encodingForModel('Claude-Sonnet-4.5'), 'o200k_base');
      assert.equal(encodingForModel('GPT-4o'), 'o200k_base');
      assert.equal(encodingForModel('GPT-4.1'), 'o200k_base');
      assert.equal(encodingForModel('GPT-5'), 'o200k_base');
      assert.equal(encodingForModel('whatever', 'cl100k_base'), 'cl100k_base');
      assert.equal(encodingForModel('GPT-4-Classic', 'o200k_base'), 'o200k_base');
      assert.equal(encodingForModel('GPT-4-Classic'), 'cl100k_base');
      assert.equal(encodingForModel('GPT-3.5-Turbo'), 'cl100k_base');
      assert.equal(encodingForModel('gpt-4'), 'cl100k_base');
      assert.equal(encodingForModel('Llama-3', 'nonsense'), 'o200k_base');
    });

    it('TokenCountCache evicts least recently used entries by total characters', () => {
      const cache = new TokenCountCache(3 * (100 + 32));
      const a = 'a'.repeat(100);
      const b = 'b'.repeat(100);
      const c = 'c'.repeat(100);
      const d = 'd'.repeat(100);
      cache.set(a, 'o200k_base', 1);
      cache.set(b, 'o200k_base', 2);
      cache.set(c, 'o200k_base', 3);
      assert.equal(cache.get(a, 'o200k_base'), 1); // a is now the most recent
      cache.set(d, 'o200k_base', 4); // evicts b, the least recent
      assert.equal(cache.get(b, 'o200k_base'), undefined);
      assert.equal(cache.get(a, 'o200k_base'), 1);
      assert.equal(cache.get(c, 'o200k_base'), 3);
      assert.equal(cache.get(d, 'o200k_base'), 4);
      assert.equal(cache.size, 3);
      assert.equal(cache.totalChars, 3 * 132);
      assert.equal(cache.evictions, 1);
      // per encoding, and an estimate never overwrites an exact count
      assert.equal(cache.get(a, 'cl100k_base'), undefined);
      cache.set(a, 'o200k_base', 99, true);
      assert.equal(cache.get(a, 'o200k_base'), 1);
      cache.set(a, 'cl100k_base', 7, true);
      assert.equal(cache.isEstimate(a, 'cl100k_base'), true);
      cache.set(a, 'cl100k_base', 8);
      assert.equal(cache.get(a, 'cl100k_base'), 8);
      assert.equal(cache.isEstimate(a, 'cl100k_base'), false);
      // a text larger than the whole cache is not stored
      cache.set('x'.repeat(1000), 'o200k_base', 1);
      assert.equal(cache.size, 3);
    });

    it('TokenCountCache follows recency for equal texts from other string objects (as each request parses afresh)', () => {
      const fresh = (s: string) => JSON.parse(JSON.stringify(s)) as string;
      const texts = Array.from({ length: 6 }, (_, i) => `${i} `.repeat(60));
      const cache = new TokenCountCache(4 * (texts[0].length + 32));
      texts.slice(0, 4).forEach((t, i) => cache.set(t, 'o200k_base', i));
      // Touch 0 and 1 through copies, re-set 2 (an update, not a new entry), then two new texts evict the two oldest: 3, then 0.
      assert.equal(cache.get(fresh(texts[0]), 'o200k_base'), 0);
      assert.equal(cache.get(fresh(texts[1]), 'o200k_base'), 1);
      cache.set(fresh(texts[2]), 'o200k_base', 22);
      assert.equal(cache.size, 4);
      assert.equal(cache.totalChars, 4 * (texts[0].length + 32));
      cache.set(texts[4], 'o200k_base', 4);
      cache.set(texts[5], 'o200k_base', 5);
      assert.deepEqual(
        texts.map((t) => cache.get(fresh(t), 'o200k_base')),
        [undefined, 1, 22, undefined, 4, 5],
      );
      assert.equal(cache.evictions, 2);
      assert.equal(cache.size, 4);
      assert.equal(cache.totalChars, 4 * (texts[0].length + 32));
      cache.clear();
      assert.equal(cache.size, 0);
      cache.set(texts[0], 'o200k_base', 7);
      assert.equal(cache.get(texts[0], 'o200k_base'), 7);
    });
  });

  describe('engine (in-process, as the worker runs it)', () => {
    const engine = createTokenEngine();

    it('counts exactly like js-tiktoken encode() for ordinary text (o200k and cl100k)', () => {
      for (const [name, text] of Object.entries(SAMPLES)) {
        assert.equal(engine.count(text, 'o200k_base').count, refCount(text), `o200k ${name}`);
        assert.equal(engine.count(text, 'cl100k_base').count, refCount(text, 'cl100k_base'), `cl100k ${name}`);
      }
    });

    it('counts special-token strings as ordinary text and never throws', () => {
      const texts = ['<|endoftext|>', 'before <|endofprompt|> after', '<|fim_prefix|><|fim_middle|><|fim_suffix|>', '<|im_start|>user'];
      // The libraries' default, which we must avoid.
      assert.throws(() => jsTiktoken().encode('<|endoftext|>'));
      assert.throws(() => gptTokenizer.countTokens('<|endoftext|>'));
      for (const t of texts) {
        const n = engine.count(t, 'o200k_base').count;
        assert.equal(n, refCount(t));
        assert.ok(n > 1, 'not collapsed into one special token');
        assert.equal(engine.count(t, 'cl100k_base').count, refCount(t, 'cl100k_base'));
      }
    });

    it('counts exactly what the worker counted with js-tiktoken, long runs (cut into chunks) included, both encodings', () => {
      const before = jsTiktokenEngine();
      for (const [name, text] of Object.entries({ ...SAMPLES, ...LONG_RUNS })) {
        for (const encoding of ['o200k_base', 'cl100k_base'] as const) {
          assert.deepEqual(engine.count(text, encoding), before.count(text, encoding), `${encoding} ${name}`);
        }
      }
    });

    it('bounds long runs without a split: close to the exact count', () => {
      // The unbounded count, from gpt-tokenizer itself (js-tiktoken's quadratic merge takes seconds here).
      const exactCount = (text: string) => gptTokenizer.countTokens(text, { disallowedSpecial: new Set() });
      const run = LONG_RUNS.randomLetters;
      const guarded = engine.count(run, 'o200k_base').count;
      const exact = exactCount(run);
      assert.ok(Math.abs(guarded - exact) / exact < 0.03, `guarded ${guarded} vs exact ${exact}`);
      assert.equal(engine.count(LONG_RUNS.sameLetter, 'o200k_base').count, exactCount(LONG_RUNS.sameLetter));
    });

    it('stops at the deadline and estimates the rest', () => {
      const big = 'word '.repeat(50_000);
      const r = engine.count(big, 'o200k_base', Date.now() - 1);
      assert.equal(r.estimated, true);
      assert.ok(r.count > 0 && r.count <= utf8Length(big));
    });

    it('stops at the deadline inside one long run too, between its chunks', () => {
      const run = randomLetters(100_000, 11);
      const r = engine.count(`intro ${run}`, 'o200k_base', Date.now() - 1);
      assert.equal(r.estimated, true);
      assert.ok(r.count > 0 && r.count <= utf8Length(run) + 6);
    });
  });

  describe('counter (worker)', () => {
    let sharedCounter: ManagedTokenCounter | undefined;
    /** One warm counter for the tests that do not need a fresh one (each cold start costs ~0.2-1 s). */
    const shared = (): ManagedTokenCounter => (sharedCounter ??= counter());

    it('does not load a tokenizer or start a worker at import or construction', () => {
      const script = `
        const t = require(${JSON.stringify(indexModule)});
        const c = t.createTokenCounter();
        const tik = Object.keys(require.cache).filter((k) => k.includes('gpt-tokenizer') || k.includes('js-tiktoken')).length;
        process.stdout.write(JSON.stringify({ tik, starts: c.stats().workerStarts }));`;
      const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 }));
      assert.deepEqual(out, { tik: 0, starts: 0 });
    });

    it('starts the worker on the first count only, and empty input never starts it', async () => {
      const c = counter();
      assert.equal(c.stats().workerStarts, 0);
      assert.deepEqual(await c.count(['', '']), [0, 0]);
      assert.equal(c.stats().workerStarts, 0);
      assert.equal(c.stats().workerRunning, false);
      assert.equal(await c.countOne('hello world'), refCount('hello world'));
      assert.equal(c.stats().workerStarts, 1);
      assert.equal(c.stats().workerRunning, true);
    });

    it('counts exactly like js-tiktoken through the worker, for both encodings', async () => {
      const c = shared();
      const texts = Object.values(SAMPLES);
      assert.deepEqual(
        await c.count(texts),
        texts.map((t) => refCount(t)),
      );
      assert.deepEqual(
        await c.count(texts, 'cl100k_base'),
        texts.map((t) => refCount(t, 'cl100k_base')),
      );
      assert.deepEqual(
        await c.count(['<|endoftext|> hi', '<|endofprompt|>']),
        ['<|endoftext|> hi', '<|endofprompt|>'].map((t) => refCount(t)),
      );
      assert.equal(c.stats().estimatedTexts, 0);
    });

    it('counts a 20k-char run of "a" and 20k random letters in the worker, off the main thread', async () => {
      const c = shared();
      await c.countOne('warm up');
      for (const text of ['a'.repeat(20_000), randomLetters(20_000, 9)]) {
        // gpt-tokenizer counts 20k characters in a few ms, so its answer can be waiting before the main
        // thread's next turn: what shows the main thread is free is that the text went to the worker
        // (the event loop turning during a long count is checked with 1 MB below).
        const sent = c.stats().charsSent;
        const n = await c.countOne(text);
        assert.equal(c.stats().charsSent - sent, text.length, 'the text was counted in the worker');
        const exactish = gptTokenizer.countTokens(text, { disallowedSpecial: new Set() });
        assert.ok(Math.abs(n - exactish) / exactish < 0.03, `${n} vs ${exactish}`);
      }
      assert.equal(c.stats().estimatedTexts, 0);
    });

    it('counts 1 MB without a split to the end (one unbounded merge would take over half an hour), the event loop turning meanwhile', async function () {
      this.timeout(300_000);
      // A budget no loaded machine reaches (the default, 4 s, would estimate the rest: tested on the engine above).
      const c = counter({ timeoutMs: 240_000 });
      const MB = 1 << 20;
      // Every chunk of a one-letter run is the same: the count is the chunk's count times the chunks.
      const sameLetter = await loopTurnsWhile(c.countOne('a'.repeat(MB)));
      assert.ok(sameLetter.turns > 0, 'the main thread kept turning while the worker counted');
      assert.equal(sameLetter.value, (MB / MAX_PIECE_BYTES) * refCount('a'.repeat(MAX_PIECE_BYTES)));
      // 1 MB of random letters, four times one 256 KB block (chunks align with the block, so the run's count
      // is four times the block's): counted in full, not estimated.
      const block = randomLetters(MB / 4, 13);
      const random = await loopTurnsWhile(c.countOne(block.repeat(4)));
      assert.ok(random.turns > 0);
      assert.equal(c.stats().estimatedTexts, 0, 'counted, not estimated');
      assert.equal(random.value, 4 * createTokenEngine().count(block, 'o200k_base').count);
    });

    it('caches per text: the next turn only sends the new texts; duplicates are sent once', async () => {
      const c = shared();
      const turn1 = ['system prompt', 'first question', 'first answer'];
      const before = c.stats().textsSent;
      await c.count(turn1);
      const sent = c.stats().textsSent;
      assert.equal(sent, before + 3);
      const turn2 = [...turn1, 'second question', 'second question'];
      const counts = await c.count(turn2);
      assert.equal(c.stats().textsSent, sent + 1);
      assert.deepEqual(
        counts,
        turn2.map((t) => refCount(t)),
      );
      assert.ok(c.stats().cacheHits >= 3);
      // per encoding
      await c.count(turn1, 'cl100k_base');
      assert.equal(c.stats().textsSent, sent + 4);
    });

    it('evicts least recently used counts when the character budget is exceeded', async () => {
      const c = counter({ cacheMaxChars: 2 * (1000 + 32) });
      const [a, b, d] = ['a', 'b', 'd'].map((ch) => `${ch} `.repeat(500));
      await c.count([a]);
      await c.count([b]);
      await c.count([a]); // refresh a
      await c.count([d]); // evicts b
      const sent = c.stats().textsSent;
      await c.count([a, d]);
      assert.equal(c.stats().textsSent, sent, 'a and d are cached');
      await c.count([b]);
      assert.equal(c.stats().textsSent, sent + 1, 'b was evicted');
      assert.ok(c.stats().cacheEvictions >= 1);
      assert.ok(c.stats().cacheChars <= 2 * 1032);
    });

    it('restarts a crashed worker, answering the crashed request with estimates', async () => {
      const file = fakeWorker(
        tmp,
        'crashing.js',
        `const { parentPort } = require('node:worker_threads');
         parentPort.on('message', (m) => { if (m && Array.isArray(m.texts) && m.texts.includes('__crash__')) process.exit(7); });
         require(${JSON.stringify(realWorker)});`,
      );
      const c = counter({ workerPath: file });
      assert.equal(await c.countOne('hello there'), refCount('hello there'));
      const counts = await c.count(['__crash__', 'innocent bystander']);
      assert.deepEqual(counts, [estimateTokens('__crash__'), estimateTokens('innocent bystander')]);
      assert.equal(c.stats().workerCrashes, 1);
      assert.equal(c.stats().workerRunning, false);
      assert.equal(await c.countOne('after the crash'), refCount('after the crash'));
      assert.equal(c.stats().workerStarts, 2);
      // The text that was being counted is remembered as an estimate: it is not sent again.
      const sent = c.stats().textsSent;
      assert.equal(await c.countOne('__crash__'), estimateTokens('__crash__'));
      assert.equal(c.stats().textsSent, sent);
    });

    it('falls back to estimates when the worker cannot run at all, and never throws', async () => {
      const file = fakeWorker(tmp, 'dies.js', 'process.exit(3);');
      const c = counter({ workerPath: file });
      for (let i = 0; i < 5; i++) {
        const counts = await c.count([`text number ${i}`, 'more text']);
        assert.deepEqual(counts, [estimateTokens(`text number ${i}`), estimateTokens('more text')]);
      }
      assert.ok(c.stats().workerStarts <= 3, 'stops restarting after repeated crashes');
    });

    it('answers with estimates when the worker misses the deadline; a late answer still fills the cache', async () => {
      // This worker holds its answers until the test creates the release file.
      const release = path.join(tmp, 'release-slow-worker');
      const file = fakeWorker(
        tmp,
        'slow.js',
        `const { existsSync } = require('node:fs');
         const { parentPort } = require('node:worker_threads');
         const { handle } = require(${JSON.stringify(realWorker)});
         parentPort.removeAllListeners('message');
         const answerWhenReleased = (m) => (existsSync(${JSON.stringify(release)}) ? parentPort.postMessage(handle(m)) : setTimeout(answerWhenReleased, 20, m));
         parentPort.on('message', answerWhenReleased);`,
      );
      const c = counter({ workerPath: file, timeoutMs: 100 });
      // Resolving at all proves the caller did not wait: the worker cannot answer before the release.
      const n = await c.countOne('slow worker text');
      assert.equal(n, estimateTokens('slow worker text'));
      assert.equal(c.stats().timeouts, 1);
      assert.equal(c.stats().cacheEntries, 0);
      writeFileSync(release, '');
      await waitFor('the late answer in the cache', () => c.stats().cacheEntries > 0);
      const sent = c.stats().textsSent;
      assert.equal(await c.countOne('slow worker text'), refCount('slow worker text'));
      assert.equal(c.stats().textsSent, sent, 'served from the cache filled by the late answer');
    });

    it('never keeps the process alive', () => {
      const script = `
        const t = require(${JSON.stringify(indexModule)});
        const c = t.createTokenCounter({ timeoutMs: 25000 }); // a loaded machine may take seconds to load ranks: this test is about exiting
        c.warm();
        c.countOne('hello').then((n) => process.stdout.write(String(n)));`;
      // execFileSync throws when the child is still running at the timeout.
      const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(Number(out), refCount('hello'));
    });

    it('warm() starts the worker in the background; dispose() stops it and later counts are estimates', async () => {
      const c = counter();
      c.warm();
      c.warm();
      assert.equal(c.stats().workerStarts, 1);
      assert.equal(await c.countOne('after warm'), refCount('after warm'));
      await c.dispose();
      assert.equal(c.stats().workerRunning, false);
      assert.equal(await c.countOne('after dispose'), estimateTokens('after dispose'));
      assert.equal(c.stats().workerStarts, 1);
    });
  });
});
