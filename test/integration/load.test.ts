/**
 * Load (bounded, loopback only): the proxy runs in its own process (test/support/loadChild.ts) so its
 * memory is measured alone, after a full GC, in front of the fake Poe in this process.
 *   - LOAD_CONCURRENT (default 500) streaming requests at once: all complete with intact content;
 *   - LOAD_SEQUENTIAL (default 10000) requests one after another: RSS growth of the proxy is reported
 *     (goal: under 20 MB).
 * The figures are printed; the README's Reliability section quotes them.
 */
import { strict as assert } from 'node:assert';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakePoe } from '../support/fake/server';
import { TEST_FAKE_MODELS, TEST_MODELS_YAML } from '../support/proxyHarness';
import { openAiError, postChat, sseData, sseText } from '../support/rawClient';

const CONCURRENT = Number(process.env.LOAD_CONCURRENT ?? 500);
const SEQUENTIAL = Number(process.env.LOAD_SEQUENTIAL ?? 10_000);
const WARMUP = Math.min(1_000, Math.ceil(SEQUENTIAL / 10));

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

describe('load (proxy in its own process)', function () {
  this.timeout(300_000);
  let fake: FakePoe;
  let child: ChildProcess;
  let url: string;
  let dir: string;
  let stderr = '';
  let agent: http.Agent;

  /** The child's memory after a full GC (V8 heap grows lazily, so RSS without a GC is mostly noise). */
  /** Requests sent to the proxy so far: memory is measured once that many have finished (points settled). */
  let sent = 0;
  const memory = (): Promise<NodeJS.MemoryUsage> =>
    new Promise((resolve) => {
      child.once('message', (m: { mem?: NodeJS.MemoryUsage }) => resolve(m.mem!));
      child.send({ mem: sent });
    });

  before(async () => {
    fake = await FakePoe.start({ models: TEST_FAKE_MODELS });
    dir = mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-load-'));
    writeFileSync(path.join(dir, 'models.yaml'), TEST_MODELS_YAML);
    const config = {
      poeBaseUrl: fake.url,
      modelsFile: path.join(dir, 'models.yaml'),
      dataDir: dir,
      pointsCutoff: 0,
      pointsWaitMs: 300,
      rateLimit: { requestsPerMinute: 0, maxConcurrent: 0 },
    };
    child = fork(path.join(__dirname, '..', 'support', 'loadChild.js'), [], {
      execArgv: ['--expose-gc'],
      env: { PATH: process.env.PATH ?? '', HOME: dir, LOAD_CHILD_CONFIG: JSON.stringify(config), LOAD_CHILD_POE_KEY: 'test-poe-key' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr!.on('data', (c) => (stderr += c));
    url = await new Promise<string>((resolve, reject) => {
      child.once('message', (m: { url?: string }) => resolve(m.url!));
      child.once('exit', (code) => reject(new Error(`proxy exited (${code}): ${stderr}`)));
    });
    agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENT });
  });

  after(async () => {
    agent?.destroy();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await exited;
    }
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${CONCURRENT} concurrent streaming requests all complete with intact content`, async () => {
    const words = (i: number): string => Array.from({ length: 20 }, (_, w) => `r${i}w${w}`).join(' ');
    const t0 = Date.now();
    sent += CONCURRENT;
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) =>
        postChat(url, { model: 'GPT-4.1', messages: [{ role: 'user', content: words(i) }], stream: true }, { agent }),
      ),
    );
    const took = Date.now() - t0;
    const bad = results
      .map((r, i) => [i, r] as const)
      .filter(([i, r]) => r.status !== 200 || !sseText(r.body).startsWith(`Echo: ${words(i)}`) || sseData(r.body).at(-1) !== '[DONE]');
    const mem = await memory();
    console.log(
      `      ${CONCURRENT} concurrent streams: ${took} ms, ${CONCURRENT - bad.length} intact; proxy RSS after ${mb(mem.rss)}, heap ${mb(mem.heapUsed)}`,
    );
    assert.deepEqual(
      bad.slice(0, 3).map(([i, r]) => `#${i} ${r.status} ${r.body.slice(0, 200)}`),
      [],
    );
    assert.ok(
      results.every((r) => !sseData(r.body).some((d) => d !== '[DONE]' && openAiError(d))),
      'no error event',
    );
    assert.equal(fake.chatRequests().length, CONCURRENT);
  });

  it(`${SEQUENTIAL} sequential requests: memory stays flat`, async () => {
    const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = async (i: number): Promise<void> => {
      const stream = i % 2 === 0;
      sent += 1;
      const r = await postChat(
        url,
        { model: 'GPT-4.1', messages: [{ role: 'user', content: `seq ${i}` }], ...(stream ? { stream: true } : {}) },
        { agent: one },
      );
      const text = stream ? sseText(r.body) : r.status === 200 ? JSON.parse(r.body).choices[0].message.content : '';
      if (r.status !== 200 || !text.startsWith(`Echo: seq ${i}`)) throw new Error(`request ${i}: ${r.status} ${r.body.slice(0, 200)}`);
      // The fake keeps every request it saw; forget them so this process's memory does not matter.
      if (i % 500 === 0) fake.reset();
    };
    for (let i = 0; i < WARMUP; i++) await send(i);
    const before = await memory();
    const t0 = Date.now();
    const samples: string[] = [];
    for (let i = 1; i <= SEQUENTIAL; i++) {
      await send(i);
      if (i % Math.ceil(SEQUENTIAL / 4) === 0) samples.push(mb((await memory()).rss));
    }
    const took = Date.now() - t0;
    const after = await memory();
    one.destroy();
    const growth = after.rss - before.rss;
    const heapGrowth = after.heapUsed - before.heapUsed;
    console.log(
      `      ${SEQUENTIAL} sequential requests (half streamed): ${took} ms (${((took / SEQUENTIAL) * 1000).toFixed(0)} µs each); proxy RSS after ${WARMUP} warm-up requests ${mb(before.rss)} → ${samples.join(' → ')} → ${mb(after.rss)}: growth ${mb(growth)} (heap ${mb(before.heapUsed)} → ${mb(after.heapUsed)}, ${mb(heapGrowth)})`,
    );
    assert.doesNotMatch(stderr, /\[error\]|MaxListenersExceeded|unhandled/i, stderr.slice(0, 2000));
    assert.ok(growth < 20 * 1024 * 1024, `RSS grew by ${mb(growth)} (goal: under 20 MB)`);
    assert.ok(heapGrowth < 5 * 1024 * 1024, `heap grew by ${mb(heapGrowth)}: a leak`);
  });
});
