/**
 * Errors tell clients whether a retry can help (issue #10): every error a retry cannot fix carries
 * `x-should-retry: false` (the header the official SDKs and Claude Code read), every 429 and 503
 * carries `Retry-After`; and the official SDKs, left on their default retries, send such a request once.
 */
import { strict as assert } from 'node:assert';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { FakePoe } from '../support/fake/server';
import { postChat, rawRequest, type RawResponse } from '../support/rawClient';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

const chat = { model: 'GPT-4.1', messages: [{ role: 'user', content: 'q' }] };
const ACCESS_KEY = 'pp-right-key';

function assertNoRetry(r: RawResponse, status: number, what: string): void {
  assert.equal(r.status, status, `${what}: ${r.body}`);
  assert.equal(r.headers['x-should-retry'], 'false', `${what} says a retry cannot help`);
}

/** A fetch that counts the requests an SDK sends (every one reaches the proxy). */
function countingFetch(): { fetch: typeof fetch; count: () => number } {
  let n = 0;
  return { fetch: (input, init) => (n++, fetch(input, init)), count: () => n };
}

describe('retry advice on errors (x-should-retry, Retry-After)', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy, setProxy: (p) => (proxy = p) });

  it('says x-should-retry: false on 400, 401, 403, 404, 413 and 415 from the gate and validation', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { accessKey: ACCESS_KEY, maxBodyBytes: 64 * 1024 });
    const auth = { authorization: `Bearer ${ACCESS_KEY}` };
    assertNoRetry(await postChat(proxy.url, chat, { headers: { authorization: 'Bearer wrong' } }), 401, 'wrong access key');
    assertNoRetry(await postChat(proxy.url, chat, { headers: { ...auth, host: 'evil.example:80' } }), 403, 'foreign Host');
    assertNoRetry(await postChat(proxy.url, { ...chat, model: 'No-Such-Model' }, { headers: auth }), 404, 'unknown model');
    assertNoRetry(await postChat(proxy.url, { ...chat, messages: 'not a list' }, { headers: auth }), 400, 'invalid body');
    assertNoRetry(await postChat(proxy.url, { ...chat, padding: 'x'.repeat(70 * 1024) }, { headers: auth }), 413, 'body too large');
    assertNoRetry(
      await rawRequest(proxy.url, { method: 'POST', body: JSON.stringify(chat), headers: { ...auth, 'content-type': 'text/plain' } }),
      415,
      'not JSON',
    );
    assertNoRetry(
      await rawRequest(proxy.url, { method: 'POST', path: '/v1/messages', body: '{}', headers: { 'content-type': 'application/json', 'x-api-key': 'wrong' } }),
      401,
      'Anthropic route, wrong key',
    );
    assert.equal(fake.chatRequests().length, 0);
  });

  it('says x-should-retry: false when over the per-message budget and when Poe refuses for good (402, 401)', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { maxPointsPerMessage: 1 });
    const capped = await postChat(proxy.url, chat);
    assertNoRetry(capped, 400, 'over the per-message cap');
    assert.match(capped.body, /cost_limit_exceeded/);
    await proxy.close();
    proxy = await startProxy(fake);
    fake.enqueueFault({ kind: 'status', status: 402, message: 'Insufficient points' });
    assertNoRetry(await postChat(proxy.url, chat), 402, "Poe's 402");
    fake.enqueueFault({ kind: 'status', status: 401, message: 'Invalid API key' });
    assertNoRetry(await postChat(proxy.url, chat), 401, "Poe's 401");
  });

  it('gives every 429 and 503 a Retry-After, and no x-should-retry: false', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, message: 'slow down' }, { times: 10 });
    const limited = await postChat(proxy.url, chat);
    assert.equal(limited.status, 429);
    assert.match(String(limited.headers['retry-after']), /^\d+$/, "Poe's 429 without Retry-After still tells the client when");
    assert.equal(limited.headers['x-should-retry'], undefined);
    fake.clearFaults();

    fake.reply = () => ({ content: 'slow answer', chunkDelayMs: 5_000 });
    const pending = postChat(proxy.url, chat);
    while (fake.inFlight() === 0) await new Promise((r) => setImmediate(r));
    await proxy.server.close(50);
    const shutdown = await pending;
    assert.equal(shutdown.status, 503);
    assert.match(String(shutdown.headers['retry-after']), /^\d+$/);
  });

  it('the OpenAI SDK, with its default retries, sends a request that gets 401, 404 or 400 once', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { accessKey: ACCESS_KEY });
    for (const [apiKey, body, status] of [
      ['wrong', chat, 401],
      [ACCESS_KEY, { ...chat, model: 'No-Such-Model' }, 404],
      [ACCESS_KEY, { ...chat, max_tokens: 'many' }, 400],
    ] as const) {
      const counter = countingFetch();
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey, fetch: counter.fetch });
      await assert.rejects(
        client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming),
        (e: unknown) => e instanceof OpenAI.APIError && e.status === status,
      );
      assert.equal(counter.count(), 1, `${status}: sent once`);
    }
  });

  it('the Anthropic SDK, with its default retries, sends a request that gets 401 or 404 once', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { accessKey: ACCESS_KEY });
    const message = { model: 'Claude-Sonnet-4.5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'q' }] };
    for (const [apiKey, body, status] of [
      ['wrong', message, 401],
      [ACCESS_KEY, { ...message, model: 'no-such-model' }, 404],
    ] as const) {
      const counter = countingFetch();
      const client = new Anthropic({ baseURL: proxy.url, apiKey, fetch: counter.fetch });
      await assert.rejects(client.messages.create(body), (e: unknown) => e instanceof Anthropic.APIError && e.status === status);
      assert.equal(counter.count(), 1, `${status}: sent once`);
    }
  });
});
