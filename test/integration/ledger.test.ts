/**
 * The ledger under real traffic and real processes: a client looping against the proxy's own rate
 * limiter is counted, not listed, and cannot push a paid entry out; requests refused at the gate
 * are counted too; two processes appending to one directory lose and glue nothing.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Ledger } from '../../src/core/store/ledger';
import type { Logger } from '../../src/core/log';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';
import { postChat, rawRequest, refusedCounts } from '../support/rawClient';

const ask = (content: string) => ({ model: 'GPT-4.1', messages: [{ role: 'user', content }] });

describe('ledger under load', function () {
  this.timeout(120_000);
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });

  it('a client looping against the rate limiter is counted per minute and evicts no paid entry', async () => {
    // One request a minute after the burst: the 4,000-request loop must not see a refill even on a loaded machine.
    proxy = await startProxy(fake, { rateLimit: { requestsPerMinute: 1, burst: 3, maxConcurrent: 0 } });
    const paid: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await postChat(proxy.url, ask(`paid ${i}`), { headers: { 'x-request-id': `paid-${i}` } });
      assert.equal(r.status, 200);
      paid.push(`paid-${i}`);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    let refused = 0;
    const loop = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const r = await postChat(proxy.url, ask('again'), { agent });
        assert.equal(r.status, 429, r.body);
        refused++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => loop(250)));
    agent.destroy();
    assert.equal(refused, 4000);
    assert.deepEqual(
      (await proxy.ledger.read()).map((e) => e.id),
      paid,
      'every paid entry is still there, and nothing else is a line',
    );
    assert.deepEqual(await refusedCounts(proxy), { rate_limit: 4000 });
    const lines = (await proxy.ledger.readRefused()).length;
    assert.ok(lines <= 3, `one summary line per minute (the loop spans at most a minute boundary or two): ${lines}`);
    assert.equal(fake.chatRequests().length, 3, 'nothing refused reached Poe');
  });

  it('counts requests refused at the gate (bad content type, bad JSON, wrong access key)', async () => {
    proxy = await startProxy(fake, { accessKey: 'local-key' });
    const auth = { authorization: 'Bearer local-key' };
    assert.equal((await rawRequest(proxy.url, { body: 'x', headers: { ...auth, 'content-type': 'text/plain' } })).status, 415);
    assert.equal((await rawRequest(proxy.url, { body: '{', headers: { ...auth, 'content-type': 'application/json' } })).status, 400);
    assert.equal((await postChat(proxy.url, ask('q'), { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await postChat(proxy.url, { model: 'no-such-model', messages: [{ role: 'user', content: 'q' }] }, { headers: auth })).status, 404);
    assert.deepEqual(await refusedCounts(proxy), { gate: 3, invalid_request: 1 });
    assert.deepEqual(await proxy.ledger.read(), []);
  });
});

describe('ledger with two writer processes', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-procs-'));
  });

  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('two processes appending 10,000 entries each to one directory lose and glue nothing', async () => {
    const child = path.join(__dirname, '..', 'support', 'ledgerWriterChild.js');
    const run = (name: string): Promise<unknown> => promisify(execFile)(process.execPath, [child, dir, name, '10000'], { timeout: 100_000 });
    await Promise.all([run('a'), run('b')]);
    const names = (await fsp.readdir(dir)).filter((n) => n.startsWith('ledger-'));
    assert.ok(
      names.some((n) => n.endsWith('.jsonl.gz')),
      `a past month was compressed while both wrote: ${names.join(', ')}`,
    );
    const logger = warnings();
    const ledger = new Ledger({ dir, retentionMonths: 0, logger });
    const entries = await ledger.read();
    for (const w of ['a', 'b']) {
      const ids = entries.filter((e) => e.client === w).map((e) => Number(e.id.split('-')[1]));
      assert.equal(ids.length, 10_000, `writer ${w}: all entries read back`);
      assert.equal(new Set(ids).size, 10_000, `writer ${w}: no duplicates`);
    }
    // Every line of every file, plain or compressed, is one whole record.
    assert.deepEqual(logger.lines, [], 'no damaged line anywhere');
    const refused = await ledger.readRefused();
    assert.equal(
      refused.reduce((n, r) => n + r.count, 0),
      2 * Math.ceil(10_000 / 7),
      'every counted refusal written once',
    );
  });
});

/** A logger keeping only warnings and errors. */
function warnings(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (m: string): void => void lines.push(m);
  return { lines, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: keep, error: keep };
}
