/**
 * What clients and shutdowns can do to a stream: keep-alive pings while Poe is silent, a client that
 * disconnects (the upstream request must stop; `npm run bench` measures how fast), a client that stops
 * reading (the proxy must not buffer without bound), and a graceful stop.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { DEFAULT_CONFIG, type ConfigOverrides } from '../../src/core/store/config';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';
import { ledgerEntries, openAiError, openStream, postChat, sleep, sseData, sseText } from '../support/rawClient';
import { waitFor } from '../support/wait';

const ask = (text: string, extra: Record<string, unknown> = {}) => ({ model: 'GPT-4.1', messages: [{ role: 'user', content: text }], ...extra });

describe('client faults and graceful stop', function () {
  let fake: FakePoe;
  let proxy: TestProxy | undefined;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy, failOnUnhandledRejection: true });
  afterEach(() => {
    proxy = undefined;
  });

  const start = async (overrides: ConfigOverrides = {}): Promise<TestProxy> => {
    proxy = await startProxy(fake, overrides);
    return proxy;
  };

  describe('keep-alive pings', () => {
    it('defaults to one `: ping` every 15 s', () => {
      assert.equal(DEFAULT_CONFIG.keepAliveIntervalMs, 15_000);
    });

    it('sends `: ping` comments while Poe is silent between chunks, and the content stays intact', async () => {
      const p = await start({ keepAliveIntervalMs: 50 });
      fake.reply = () => ({ chunks: ['thinking', ' done', ' now'], chunkDelayMs: 300 });
      const r = await postChat(p.url, ask('x', { stream: true }));
      const pings = r.body.split(': ping\n\n').length - 1;
      assert.ok(pings >= 4, `${pings} pings during ~600 ms of silence at a 50 ms interval`);
      assert.ok(sseText(r.body).startsWith('thinking done now'));
      assert.equal(sseData(r.body).at(-1), '[DONE]');
      // The official SDK ignores the comments.
      const stream = await p.client().chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }], stream: true });
      let text = '';
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
      assert.ok(text.startsWith('thinking done now'), text);
    });

    it('sends no pings while Poe keeps talking, nor to a JSON client', async () => {
      // A stream that lasts well past the ping interval, with gaps far below it (room for a loaded machine's delays).
      const p = await start({ keepAliveIntervalMs: 600 });
      fake.reply = () => ({ chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), chunkDelayMs: 40 });
      const busy = await postChat(p.url, ask('x', { stream: true }));
      assert.ok(!busy.body.includes(': ping'), 'chunks every 40 ms for 1.6 s keep the 600 ms ping timer from firing');
      fake.reply = () => ({ chunks: ['a', 'b'], chunkDelayMs: 700 });
      const json = await postChat(p.url, ask('x'));
      assert.equal(json.status, 200);
      assert.ok(JSON.parse(json.body).choices[0].message.content.startsWith('ab'));
    });
  });

  describe('client disconnects', () => {
    it('a client that disconnects mid-stream aborts the upstream request while Poe is still streaming', async () => {
      const p = await start();
      const CHUNKS = 500; // 5 s at 10 ms each: an upstream left running would finish, not abort
      fake.reply = () => ({ chunks: Array.from({ length: CHUNKS }, (_, i) => `w${i} `), chunkDelayMs: 10 });
      const RUNS = 3;
      for (let i = 0; i < RUNS; i++) {
        const { req, res } = await openStream(p.url, ask('long', { stream: true }));
        const aborted = fake.waitForAbort(3000);
        res.destroy();
        req.destroy();
        const rec = await aborted;
        assert.equal(rec.aborted, true);
        assert.equal(rec.completed, false);
        assert.ok(rec.chunksSent < CHUNKS, `the upstream stream stopped early (${rec.chunksSent}/${CHUNKS} chunks)`);
      }
      const entries = await ledgerEntries(p, RUNS, 20_000); // aborted entries wait for a token count and the points window
      assert.equal(entries.filter((e) => e.status === 'aborted' && e.httpStatus === 499).length, RUNS, 'each abort is in the ledger');
    });

    it('a disconnect while Poe has not answered yet, or during a retry wait, stops the upstream work', async () => {
      const p = await start({ keepAliveIntervalMs: 50, upstreamRetries: 2, retryMaxDelayMs: 30_000 });
      fake.enqueueFault({ kind: 'stall-before-headers' });
      const stalled = await openStream(p.url, ask('x', { stream: true })); // first bytes are a ping
      const aborted = fake.waitForAbort(3000);
      stalled.req.destroy();
      assert.equal((await aborted).fault, 'stall-before-headers');

      fake.enqueueFault({ kind: 'status', status: 429, headers: { 'retry-after': '20' } });
      const waiting = await openStream(p.url, ask('x', { stream: true }));
      await waitFor('the 429 sent, so the proxy is in its retry wait', () => fake.chatRequests()[1]?.completed);
      waiting.req.destroy();
      const entries = await ledgerEntries(p, 2);
      assert.equal(fake.chatRequests().length, 2, 'no retry is sent for a client that left');
      assert.deepEqual(
        entries.map((e) => e.status),
        ['aborted', 'aborted'],
      );
    });
  });

  describe('slow reader', () => {
    it('pauses the upstream instead of buffering when the client stops reading, then delivers everything intact', async () => {
      // A short idle timeout: the pause below is the client's doing and must not count as Poe going silent.
      const p = await start({ footer: false, upstreamIdleTimeoutMs: 400 });
      const piece = 'x'.repeat(16 * 1024 - 8);
      const count = 3000; // ~48 MiB of content
      fake.reply = () => ({ chunks: Array.from({ length: count }, (_, i) => `${String(i).padStart(7, '0')} ${piece}`) });
      const { res, first } = await openStream(p.url, ask('big', { stream: true }));
      const parts: Buffer[] = [first];
      res.on('data', (c: Buffer) => parts.push(c));
      res.pause();

      // Wait until the upstream stops sending: it must stall well before the end while the client is not reading.
      const rec = fake.chatRequests()[0];
      let last = -1;
      const unchanged = () => {
        const same = rec.chunksSent === last;
        last = rec.chunksSent;
        return same;
      };
      await waitFor('the upstream to stop sending', unchanged, 9_000, 150);
      const inFlight = (p.server as unknown as { inFlight: Set<http.ServerResponse> }).inFlight;
      const buffered = [...inFlight].reduce((n, r) => n + r.writableLength, 0);
      console.log(
        `      slow reader: upstream sent ${rec.chunksSent}/${count} chunks (${((rec.chunksSent * 16) / 1024).toFixed(1)} MiB, held in kernel socket buffers) before stalling; proxy user-space buffer ${(buffered / 1024).toFixed(0)} KiB`,
      );
      assert.ok(rec.chunksSent < count, `upstream paused (${rec.chunksSent}/${count} chunks sent)`);
      assert.equal(rec.completed, false);
      assert.ok(buffered <= 1024 * 1024, `proxy buffers at most ~1 MiB for the client, not the whole stream (${buffered} bytes)`);

      await sleep(1_000); // the scenario, not a synchronisation: the client stays away well past the upstream idle timeout

      // Reading again drains everything, in order and complete.
      const ended = new Promise<void>((resolve) => res.once('end', () => resolve()));
      res.resume();
      await ended;
      const text = sseText(Buffer.concat(parts).toString('utf8'));
      const ids = text.match(/\d{7} /g) ?? [];
      assert.equal(ids.length, count, 'every chunk arrived');
      assert.ok(
        ids.every((id, i) => Number(id) === i),
        'in order',
      );
      assert.equal(text.length, count * (piece.length + 8));
    });
  });

  describe('graceful stop', () => {
    it('refuses new connections, lets a stream that finishes within the grace period complete', async () => {
      const p = await start();
      fake.reply = () => ({ chunks: Array.from({ length: 6 }, (_, i) => `p${i} `), chunkDelayMs: 60 });
      const { res, first } = await openStream(p.url, ask('x', { stream: true }));
      const parts: Buffer[] = [first];
      res.on('data', (c: Buffer) => parts.push(c)).resume();
      const ended = new Promise<void>((resolve) => res.once('end', () => resolve()));
      const closing = p.server.close(3000); // stops listening at once
      await assert.rejects(postChat(p.url, ask('late')), /ECONNREFUSED|ECONNRESET|socket hang up/);
      await ended;
      await closing;
      const body = Buffer.concat(parts).toString('utf8');
      assert.ok(sseText(body).startsWith('p0 p1 p2 p3 p4 p5'), body);
      assert.ok(!sseData(body).some((d) => d !== '[DONE]' && openAiError(d)), 'no error event');
      assert.equal(sseData(body).at(-1), '[DONE]');
    });

    it('answers a JSON request still waiting for Poe after the grace period with 503 proxy_shutdown', async () => {
      const p = await start();
      fake.reply = () => ({ chunks: ['slow', ' answer'], chunkDelayMs: 2_000 });
      const prompt = 'json at shutdown';
      const pending = postChat(p.url, ask(prompt));
      await waitFor('the request to reach Poe', () => fake.inFlight() > 0);
      await p.server.close(300);
      const r = await pending;
      assert.equal(r.status, 503, r.body);
      assert.equal(openAiError(r.body)?.code, 'proxy_shutdown');
      // The exchange ends once its Poe request is cut; its ledger entry is written after any retry would have been sent.
      const entries = await ledgerEntries(p, 1);
      assert.equal(entries.length, 1, 'the request is in the ledger');
      const sent = fake.chatRequests().filter((q) => JSON.stringify(q.body).includes(prompt));
      assert.equal(sent.length, 1, 'the client got its 503: nothing is sent to Poe again (points would burn for nobody)');
    });

    it('ends a stream still running after the grace period with an error event and [DONE], and stops the upstream', async () => {
      const p = await start();
      fake.reply = () => ({ chunks: Array.from({ length: 400 }, (_, i) => `q${i} `), chunkDelayMs: 25 });
      const { res, first } = await openStream(p.url, ask('x', { stream: true }));
      const parts: Buffer[] = [first];
      res.on('data', (c: Buffer) => parts.push(c)).resume();
      const ended = new Promise<void>((resolve) => {
        res.once('end', () => resolve());
        res.once('close', () => resolve());
      });
      await p.server.close(300);
      await ended;
      const body = Buffer.concat(parts).toString('utf8');
      assert.ok(sseText(body).startsWith('q0 q1'), 'content before the stop was delivered');
      const data = sseData(body);
      assert.equal(data.at(-1), '[DONE]', body.slice(-200));
      const err = openAiError(data.at(-2) ?? '');
      assert.equal(err?.code, 'proxy_shutdown');
      assert.match(err!.message, /retry/);
      // This test's upstream stream (the previous test's proxy may still send Poe a retry after its shutdown).
      const rec = fake.chatRequests().find((r) => r.body?.stream === true)!;
      await waitFor('the upstream stream to be closed', () => rec.aborted);
      assert.equal(rec.completed, false);
      assert.ok(rec.chunksSent < 400, 'upstream stopped');
      const entries = await ledgerEntries(p, 1);
      assert.equal(entries[0]?.status, 'error', 'the cut-off stream is in the ledger as failed');
      assert.match(entries[0]?.error ?? '', /proxy shut down/, 'recorded as our shutdown, not as a fault of Poe');
    });
  });
});
