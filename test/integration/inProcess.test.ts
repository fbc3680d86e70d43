/**
 * The chat pipeline without HTTP (runChatInProcess), against the fake Poe: the same guards, ledger
 * entries and finish listeners as POST /v1/chat/completions, no footer, and cancellation that
 * reaches Poe.
 */
import { strict as assert } from 'node:assert';
import { FOOTER_MARK } from '../../src/core/exchange/footer';
import { InProcessAbortError, InProcessChatError, runChatInProcess, ToolCallAccumulator } from '../../src/core/exchange/inProcess';
import type { LedgerEntry } from '../../src/core/store/ledger';
import type { ChatChunk } from '../../src/core/exchange/openaiTypes';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

describe('in-process chat (no HTTP)', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });

  function finished(): Promise<LedgerEntry> {
    return new Promise((resolve) => {
      const sub = proxy.engine.onDidFinishRequest((e) => {
        sub.dispose();
        resolve(e);
      });
    });
  }

  it('streams the answer chunk by chunk without a footer, and records the request with its client', async () => {
    proxy = await startProxy(fake);
    fake.reply = () => ({ chunks: ['Hello', ' from', ' Poe'], chunkDelayMs: 20 });
    const entry = finished();
    const chunks: ChatChunk[] = [];
    const httpBefore = fake.chatRequests().length;
    await runChatInProcess(
      proxy.engine.inProcessServices(),
      { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] },
      { onChunk: (c) => chunks.push(c), client: 'vscode-lm' },
    );
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'Hello from Poe');
    assert.ok(!text.includes(FOOTER_MARK), 'no footer');
    assert.ok(chunks.filter((c) => c.choices[0]?.delta?.content).length >= 3, 'relayed as separate chunks');
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
    const up = fake.chatRequests().slice(httpBefore);
    assert.equal(up.length, 1);
    assert.equal(up[0].body.model, 'GPT-4.1', 'the alias/case was resolved by the registry');
    assert.equal(up[0].body.stream, true);
    const e = await entry;
    assert.equal(e.client, 'vscode-lm');
    assert.equal(e.status, 'ok');
    assert.equal(e.model, 'GPT-4.1');
    assert.ok(typeof e.points === 'number' && e.points > 0, `points recorded: ${JSON.stringify(e)}`);
  });

  it('keeps the footer when asked (footer: true) — the option is the only difference', async () => {
    proxy = await startProxy(fake);
    const chunks: ChatChunk[] = [];
    await runChatInProcess(
      proxy.engine.inProcessServices(),
      { model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] },
      { onChunk: (c) => chunks.push(c), footer: true },
    );
    assert.ok(
      chunks
        .map((c) => c.choices[0]?.delta?.content ?? '')
        .join('')
        .includes(FOOTER_MARK),
    );
  });

  it('answers with the paused message below the cutoff and does not call Poe', async () => {
    proxy = await startProxy(fake, { pointsCutoff: 10_000_000 });
    const entry = finished();
    const chunks: ChatChunk[] = [];
    await runChatInProcess(
      proxy.engine.inProcessServices(),
      { model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] },
      { onChunk: (c) => chunks.push(c) },
    );
    assert.match(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), /paused/);
    assert.equal(fake.chatRequests().length, 0);
    assert.equal((await entry).status, 'paused');
  });

  it('rejects with the OpenAI-shaped error (and its hint) for an unknown model or an upstream failure', async () => {
    proxy = await startProxy(fake, { upstreamRetries: 0 });
    await assert.rejects(
      runChatInProcess(proxy.engine.inProcessServices(), { model: 'No-Such', messages: [{ role: 'user', content: 'x' }] }, { onChunk: () => undefined }),
      (e: unknown) => e instanceof InProcessChatError && e.status === 404 && e.code === 'model_not_found' && /models\.yaml/.test(e.message),
    );
    fake.enqueueFault({ kind: 'status', status: 401, message: 'Invalid API key' });
    await assert.rejects(
      runChatInProcess(proxy.engine.inProcessServices(), { model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] }, { onChunk: () => undefined }),
      (e: unknown) => e instanceof InProcessChatError && e.status === 401 && /poe\.com\/api_key/.test(e.message),
    );
    fake.enqueueFault({ kind: 'error-mid-stream', afterChunks: 2, message: 'boom' });
    const chunks: ChatChunk[] = [];
    await assert.rejects(
      runChatInProcess(
        proxy.engine.inProcessServices(),
        { model: 'GPT-4.1', messages: [{ role: 'user', content: 'one two three four' }] },
        { onChunk: (c) => chunks.push(c) },
      ),
      (e: unknown) => e instanceof InProcessChatError && /boom/.test(e.message),
    );
    assert.ok(chunks.length > 0, 'what arrived before the error was delivered');
  });

  it('takes a rate-limit slot like an HTTP client: over the burst it rejects with 429, and the slot is released after', async () => {
    proxy = await startProxy(fake, { rateLimit: { requestsPerMinute: 1, burst: 1, maxConcurrent: 0 } });
    const svc = proxy.engine.inProcessServices();
    const ask = (client: string): Promise<void> =>
      runChatInProcess(svc, { model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] }, { onChunk: () => undefined, client });
    await ask('vscode-lm');
    const before = fake.chatRequests().length;
    await assert.rejects(ask('vscode-lm'), (e: unknown) => e instanceof InProcessChatError && e.status === 429 && e.code === 'rate_limit_exceeded');
    assert.equal(fake.chatRequests().length, before, 'a refused request never reaches Poe');
    await ask('another-client');

    const capped = await startProxy(fake, { rateLimit: { requestsPerMinute: 0, burst: 1, maxConcurrent: 1 } });
    try {
      const csvc = capped.engine.inProcessServices();
      fake.reply = () => ({ chunks: ['a', 'b', 'c'], chunkDelayMs: 50 });
      const first = runChatInProcess(csvc, { model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] }, { onChunk: () => undefined });
      await assert.rejects(
        runChatInProcess(csvc, { model: 'GPT-4.1', messages: [{ role: 'user', content: 'y' }] }, { onChunk: () => undefined }),
        (e: unknown) => e instanceof InProcessChatError && e.code === 'too_many_concurrent_requests',
      );
      await first;
      await runChatInProcess(csvc, { model: 'GPT-4.1', messages: [{ role: 'user', content: 'z' }] }, { onChunk: () => undefined });
    } finally {
      await capped.close();
    }
  });

  it('aborting the signal aborts the upstream request and records "aborted"', async () => {
    proxy = await startProxy(fake);
    fake.reply = () => ({ chunks: Array.from({ length: 50 }, (_, i) => `w${i} `), chunkDelayMs: 100 });
    const entry = finished();
    const ac = new AbortController();
    let seen = 0;
    const run = runChatInProcess(
      proxy.engine.inProcessServices(),
      { model: 'GPT-4.1', messages: [{ role: 'user', content: 'long' }] },
      {
        signal: ac.signal,
        onChunk: (c) => {
          if (c.choices[0]?.delta?.content && ++seen === 2) ac.abort();
        },
      },
    );
    await assert.rejects(run, InProcessAbortError);
    const aborted = await fake.waitForAbort(5000);
    assert.equal(aborted.path, '/v1/chat/completions');
    assert.ok(aborted.chunksSent < 50, `upstream stopped early (${aborted.chunksSent} frames sent)`);
    assert.equal((await entry).status, 'aborted');
  });

  it('streams tool calls, which ToolCallAccumulator joins', async () => {
    proxy = await startProxy(fake);
    fake.reply = () => ({ toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
    const acc = new ToolCallAccumulator();
    let finish: string | null = null;
    await runChatInProcess(
      proxy.engine.inProcessServices(),
      {
        model: 'GPT-4.1',
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
      },
      {
        onChunk: (c) => {
          acc.add(c.choices[0]?.delta);
          finish = c.choices[0]?.finish_reason ?? finish;
        },
      },
    );
    assert.equal(finish, 'tool_calls');
    assert.deepEqual(acc.take(), [{ id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }]);
    assert.ok(fake.chatRequests()[0].body.tools, 'tools were forwarded');
  });
});

describe('ToolCallAccumulator', () => {
  it('joins fragments by index, in index order, and keeps unparsable arguments raw', () => {
    const acc = new ToolCallAccumulator();
    acc.add({ tool_calls: [{ index: 1, id: 'b', function: { name: 'second', arguments: '' } }] });
    acc.add({ tool_calls: [{ index: 0, id: 'a', function: { name: 'first', arguments: '{"x":' } }] });
    acc.add({
      tool_calls: [
        { index: 0, function: { arguments: '1}' } },
        { index: 1, function: { arguments: 'not json' } },
      ],
    });
    assert.equal(acc.size, 2);
    assert.deepEqual(acc.take(), [
      { id: 'a', name: 'first', input: { x: 1 } },
      { id: 'b', name: 'second', input: { _raw: 'not json' } },
    ]);
    assert.equal(acc.size, 0);
  });
});
