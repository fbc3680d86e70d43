/**
 * Every upstream fault Poe (or the network) can produce, against the fake upstream: the client always
 * gets an OpenAI-shaped error (JSON, or an error event and a proper end of stream), the proxy keeps
 * serving, and the ledger records the outcome.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import type { ConfigOverrides } from '../../src/core/store/config';
import type { LedgerEntry } from '../../src/core/store/ledger';
import { type Fault } from '../support/fake/faults';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';
import { ledgerEntries, openAiError, postChat, rawRequest, sseData, sseText } from '../support/rawClient';

const ask = (text: string, extra: Record<string, unknown> = {}) => ({ model: 'GPT-4.1', messages: [{ role: 'user', content: text }], ...extra });

/** The last SSE data event before [DONE] must be an OpenAI-shaped error; returns it. */
function streamError(body: string): { message: string; type: string; code: string | null } {
  const data = sseData(body);
  assert.equal(data.at(-1), '[DONE]', `stream ends with [DONE]: ${body.slice(-300)}`);
  const err = openAiError(data.at(-2) ?? '');
  assert.ok(err, `an error event before [DONE]: ${data.at(-2)}`);
  return err;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('upstream faults', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy, failOnUnhandledRejection: true });

  const start = async (overrides: ConfigOverrides = {}): Promise<TestProxy> => {
    proxy = await startProxy(fake, { upstreamRetries: 0, ...overrides });
    return proxy;
  };

  /** After a fault the same proxy must answer a normal request, stream and JSON. */
  async function assertStillServing(): Promise<void> {
    const json = await postChat(proxy.url, ask('still there?'));
    assert.equal(json.status, 200, json.body);
    assert.ok(JSON.parse(json.body).choices[0].message.content.startsWith('Echo: still there?'));
    const sse = await postChat(proxy.url, ask('and streaming?', { stream: true }));
    assert.equal(sse.status, 200);
    assert.ok(sseText(sse.body).startsWith('Echo: and streaming?'));
  }

  async function lastEntry(n = 1): Promise<LedgerEntry> {
    const entries = await ledgerEntries(proxy, n);
    assert.ok(entries.length >= n, `ledger has ${entries.length} entries, expected ${n}`);
    return entries[n - 1];
  }

  it('connection refused: 502 upstream_unreachable after the bounded retries, ledger error', async () => {
    const closed = await freePort();
    await start({ poeBaseUrl: `http://127.0.0.1:${closed}`, upstreamRetries: 1 });
    const r = await postChat(proxy.url, ask('x'));
    assert.equal(r.status, 502);
    const err = openAiError(r.body);
    assert.ok(err, r.body);
    assert.equal(err.code, 'upstream_unreachable');
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /Check your network and the Poe base URL/);
    const e = await lastEntry();
    assert.equal(e.status, 'error');
    assert.equal(e.httpStatus, 502);
    assert.equal(e.retries, 1);
    // Still serving: the gate and the model list work, and a second chat fails the same clean way.
    assert.equal((await rawRequest(proxy.url, { path: '/v1/models' })).status, 200);
    assert.equal((await postChat(proxy.url, ask('again', { stream: true }))).status, 502);
  });

  for (const kind of ['refuse', 'reset-before-headers'] as const) {
    it(`connection ${kind}: retried, then a clean 502 when it persists`, async () => {
      await start({ upstreamRetries: 1 });
      fake.enqueueFault({ kind });
      const ok = await postChat(proxy.url, ask('retry me'));
      assert.equal(ok.status, 200, 'one reset is retried');
      assert.equal(fake.chatRequests().length, 2);
      fake.enqueueFault({ kind }, { times: 2 });
      const r = await postChat(proxy.url, ask('x', { stream: true }));
      assert.equal(r.status, 502);
      assert.equal(openAiError(r.body)?.code, 'upstream_unreachable');
      const e = await lastEntry(2);
      assert.equal(e.status, 'error');
      assert.equal(e.httpStatus, 502);
      await assertStillServing();
    });
  }

  it('reset mid-stream: content so far, then an error event and [DONE]; ledger error', async () => {
    await start();
    fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 3 });
    const r = await postChat(proxy.url, ask('one two three four five six seven', { stream: true }));
    assert.equal(r.status, 200);
    const err = streamError(r.body);
    assert.equal(err.code, 'stream_interrupted');
    assert.match(err.message, /retry/);
    assert.ok(sseText(r.body).startsWith('Echo: one'), 'the content before the break was relayed');
    const e = await lastEntry();
    assert.equal(e.status, 'error');
    assert.equal(e.httpStatus, 502);
    assert.equal(fake.chatRequests().length, 1, 'no retry after the first byte');
    await assertStillServing();
  });

  it('reset mid-body of a JSON answer: 502 upstream error, not an internal error', async () => {
    await start();
    fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 1 });
    const r = await postChat(proxy.url, ask('hello'));
    assert.equal(r.status, 502, r.body);
    const err = openAiError(r.body);
    assert.ok(err, r.body);
    assert.equal(err.type, 'upstream_error');
    assert.notEqual(err.code, 'internal_error');
    assert.equal((await lastEntry()).httpStatus, 502);
    await assertStillServing();
  });

  it('stall before headers: 502 upstream_timeout (JSON), or pings then an error event (stream)', async () => {
    await start({ upstreamHeadersTimeoutMs: 300, keepAliveIntervalMs: 50 });
    fake.enqueueFault({ kind: 'stall-before-headers' });
    const json = await postChat(proxy.url, ask('x'));
    assert.equal(json.status, 502);
    assert.equal(openAiError(json.body)?.code, 'upstream_timeout');
    assert.match(openAiError(json.body)!.message, /no response headers/);

    fake.enqueueFault({ kind: 'stall-before-headers' });
    const sse = await postChat(proxy.url, ask('x', { stream: true }));
    assert.equal(sse.status, 200, 'pings committed the stream before the timeout');
    assert.match(sse.body, /^: ping\n\n/, 'keep-alive comments while Poe was silent');
    assert.equal(streamError(sse.body).code, 'upstream_timeout');
    const entries = await ledgerEntries(proxy, 2);
    assert.deepEqual(
      entries.map((e) => [e.status, e.httpStatus]),
      [
        ['error', 502],
        ['error', 502],
      ],
    );
    await assertStillServing();
  });

  it('stall mid-stream: the idle timeout ends the stream with an error event; ledger error', async () => {
    await start({ upstreamIdleTimeoutMs: 300 });
    fake.enqueueFault({ kind: 'stall-mid-stream', afterChunks: 2 });
    const r = await postChat(proxy.url, ask('a b c d e f', { stream: true }));
    const err = streamError(r.body);
    assert.equal(err.code, 'stream_interrupted');
    assert.match(err.message, /went silent/);
    assert.ok(sseText(r.body).length > 0);
    const e = await lastEntry();
    assert.equal(e.status, 'error');
    assert.match(e.error ?? '', /went silent/);
    await assertStillServing();
  });

  it('stall mid-body of a JSON answer: 502 after the idle timeout', async () => {
    await start({ upstreamIdleTimeoutMs: 300 });
    fake.enqueueFault({ kind: 'stall-mid-stream', afterChunks: 1 });
    const r = await postChat(proxy.url, ask('hello'));
    assert.equal(r.status, 502, r.body);
    assert.match(openAiError(r.body)!.message, /went silent/);
    await assertStillServing();
  });

  it('garbage SSE lines are skipped: the content arrives intact and the request succeeds', async () => {
    await start();
    fake.enqueueFault({ kind: 'garbage-sse' });
    const r = await postChat(proxy.url, ask('alpha beta gamma delta', { stream: true }));
    assert.equal(r.status, 200);
    assert.ok(sseText(r.body).startsWith('Echo: alpha beta gamma delta'), sseText(r.body));
    assert.equal(sseData(r.body).at(-1), '[DONE]');
    assert.ok(!sseData(r.body).some((d) => d !== '[DONE]' && openAiError(d)), 'no error event');
    assert.ok(!r.body.includes('<html>') && !r.body.includes('not json'), 'garbage not relayed');
    assert.equal((await lastEntry()).status, 'ok');
  });

  it('invalid JSON from Poe: 502 invalid_upstream_json (JSON) and an error event (stream)', async () => {
    await start();
    fake.enqueueFault({ kind: 'invalid-json' });
    const json = await postChat(proxy.url, ask('x'));
    assert.equal(json.status, 502);
    assert.equal(openAiError(json.body)?.code, 'invalid_upstream_json');
    fake.enqueueFault({ kind: 'invalid-json' });
    const sse = await postChat(proxy.url, ask('x', { stream: true }));
    assert.equal(sse.status, 200);
    assert.match(streamError(sse.body).message, /without finishing/);
    const entries = await ledgerEntries(proxy, 2);
    assert.deepEqual(
      entries.map((e) => e.status),
      ['error', 'error'],
    );
    await assertStillServing();
  });

  it('an error event from Poe mid-stream is relayed as an error event', async () => {
    await start();
    fake.enqueueFault({ kind: 'error-mid-stream', afterChunks: 2, message: 'model overloaded' });
    const r = await postChat(proxy.url, ask('a b c d', { stream: true }));
    assert.match(streamError(r.body).message, /model overloaded/);
    assert.equal((await lastEntry()).status, 'error');
    await assertStillServing();
  });

  it('429 with Retry-After: waits as Poe asks, then relays 429 with Retry-After when it persists', async () => {
    await start({ upstreamRetries: 2, retryMaxDelayMs: 10_000 });
    fake.enqueueFault({ kind: 'status', status: 429, message: 'slow down', headers: { 'retry-after': '0.2' } }, { times: 3 });
    const r = await postChat(proxy.url, ask('x'));
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '1', 'Retry-After passed on (rounded up to whole seconds)');
    const err = openAiError(r.body);
    assert.equal(err?.code, 'upstream_429');
    assert.equal(err?.type, 'rate_limit_error');
    assert.match(err!.message, /slow down/);
    const times = fake.chatRequests().map((q) => q.receivedAt);
    assert.equal(times.length, 3);
    assert.ok(times[1] - times[0] >= 150 && times[2] - times[1] >= 150, `retries honoured Retry-After: gaps ${times[1] - times[0]}, ${times[2] - times[1]} ms`);
    const e = await lastEntry();
    assert.equal(e.status, 'rate_limited');
    assert.equal(e.httpStatus, 429);
    assert.equal(e.retries, 2);
    await assertStillServing();
  });

  for (const status of [500, 502, 503]) {
    it(`${status} from Poe: retried, then relayed as an OpenAI error; a stream client gets the same`, async () => {
      await start({ upstreamRetries: 1 });
      const fault: Fault = { kind: 'status', status, message: `poe is down (${status})` };
      fake.enqueueFault(fault);
      assert.equal((await postChat(proxy.url, ask('x'))).status, 200, 'one failure is retried');
      fake.enqueueFault(fault, { times: 2 });
      const r = await postChat(proxy.url, ask('x'));
      assert.equal(r.status, status);
      const err = openAiError(r.body);
      assert.equal(err?.code, `upstream_${status}`);
      assert.equal(err?.type, 'upstream_error');
      assert.match(err!.message, new RegExp(`poe is down \\(${status}\\).*try again`));
      fake.enqueueFault(fault, { times: 2 });
      const sse = await postChat(proxy.url, ask('x', { stream: true }));
      assert.equal(sse.status, status);
      assert.equal(openAiError(sse.body)?.code, `upstream_${status}`);
      const entries = await ledgerEntries(proxy, 3);
      assert.deepEqual(
        entries.map((e) => [e.status, e.httpStatus, e.retries]),
        [
          ['ok', 200, 1],
          ['error', status, 1],
          ['error', status, 1],
        ],
      );
      await assertStillServing();
    });
  }
});
