/**
 * The OpenAI Responses API through the proxy, driven by the official openai SDK against the fake Poe
 * (which speaks the Responses API on /v1/responses).
 */
import { strict as assert } from 'node:assert';
import OpenAI from 'openai';
import { countPromptTokens } from '../support/fake/reply';
import { FakePoe, type RecordedRequest } from '../support/fake/server';
import { ledgerEntries, postChat, reconciledEntries, refusedCounts } from '../support/rawClient';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

describe('Responses API through the proxy (openai SDK)', function () {
  let fake: FakePoe;
  let proxy: TestProxy;
  const responsesCalls = (): RecordedRequest[] => fake.requests.filter((r) => r.path === '/v1/responses');

  fakePoeHooks({ setFake: (f) => (fake = f), setProxy: (p) => (proxy = p), currentProxy: () => proxy });

  it('answers a non-streaming request with Poe content and usage, sending only the Poe key', async () => {
    const res = await proxy.client({ apiKey: 'client-own-key' }).responses.create({ model: 'gpt-4.1', instructions: 'Be brief.', input: 'hello there' });
    assert.equal(res.object, 'response');
    assert.equal(res.status, 'completed');
    assert.equal(res.output_text, 'Echo: hello there');
    const [up] = responsesCalls();
    assert.equal(up.body.model, 'GPT-4.1', 'the model is resolved to its poe_name');
    assert.equal(up.body.instructions, 'Be brief.', 'other fields pass through');
    assert.equal(up.headers.authorization, 'Bearer test-poe-key');
    assert.ok(!JSON.stringify(up.headers).includes('client-own-key'), "the client's key is never forwarded");
    assert.equal(res.usage?.input_tokens, countPromptTokens(up.body));

    const [entry] = await reconciledEntries(proxy, 1);
    assert.equal(entry.endpoint, 'responses');
    assert.equal(entry.model, 'GPT-4.1');
    assert.equal(entry.status, 'ok');
    assert.equal(entry.stream, false);
    assert.equal(entry.tokensIn, res.usage?.input_tokens);
    assert.equal(entry.tokensOut, res.usage?.output_tokens);
    assert.equal(entry.points, fake.pointsHistory()[0].cost_points);
    assert.equal(entry.pointsEstimated, false);
  });

  it('relays the event stream as Poe sends it, usage included', async () => {
    const words = Array.from({ length: 12 }, (_, i) => `word${i} `);
    fake.reply = () => ({ chunks: words, chunkDelayMs: 40 });
    const stream = await proxy.client().responses.create({ model: 'GPT-4.1', input: 'count', stream: true });
    const deltas: string[] = [];
    const types: string[] = [];
    let upstreamDoneAtFirstDelta: boolean | undefined;
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') {
        if (deltas.length === 0) upstreamDoneAtFirstDelta = responsesCalls()[0]?.completed;
        deltas.push(ev.delta);
      }
      if (ev.type === 'response.completed') completed = ev.response;
    }
    assert.equal(upstreamDoneAtFirstDelta, false, 'the first delta arrived while Poe was still streaming (nothing buffered)');
    assert.deepEqual(deltas, words);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(completed?.usage && completed.usage.output_tokens > 0);

    const [entry] = await reconciledEntries(proxy, 1);
    assert.equal(entry.endpoint, 'responses');
    assert.equal(entry.stream, true);
    assert.equal(entry.tokensIn, completed!.usage!.input_tokens);
    assert.equal(entry.tokensOut, completed!.usage!.output_tokens);
    assert.equal(entry.points, fake.pointsHistory()[0].cost_points);
  });

  it('relays streamed function calls intact', async () => {
    fake.reply = () => ({ toolCalls: [{ id: 'call_1', name: 'read_file', arguments: '{"path":"src/index.ts","lines":[1,20]}' }] });
    const stream = await proxy.client().responses.create({
      model: 'GPT-4.1',
      input: 'read it',
      tools: [{ type: 'function', name: 'read_file', parameters: { type: 'object', properties: {} }, strict: false }],
      stream: true,
    });
    let args = '';
    let done: OpenAI.Responses.ResponseOutputItem | undefined;
    for await (const ev of stream) {
      if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
      if (ev.type === 'response.output_item.done') done = ev.item;
    }
    assert.equal(args, '{"path":"src/index.ts","lines":[1,20]}');
    assert.equal(done?.type, 'function_call');
  });

  it('answers with a paused Response below the cutoff (JSON and stream), without calling Poe', async () => {
    await proxy.close();
    fake.balance = 500;
    proxy = await startProxy(fake, { pointsCutoff: 1000 });
    const res = await proxy.client().responses.create({ model: 'GPT-4.1', input: 'q' });
    assert.match(res.output_text, /paused.*500 points, below the cutoff of 1,000/);
    const stream = await proxy.client().responses.create({ model: 'GPT-4.1', input: 'q', stream: true });
    let text = '';
    let last = '';
    for await (const ev of stream) {
      last = ev.type;
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.match(text, /paused/);
    assert.equal(last, 'response.completed');
    assert.equal(responsesCalls().length, 0);
    assert.deepEqual(await refusedCounts(proxy), { paused: 2 });
    assert.deepEqual(await proxy.ledger.read(), [], 'nothing reached Poe: no ledger lines');
  });

  it('answers a malformed body with a 400 naming the field, without calling Poe', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ model: 'GPT-4.1' }, 'input'],
      [{ model: 'GPT-4.1', input: 42 }, 'input'],
      [{ model: 'GPT-4.1', input: 'q', max_output_tokens: 'many' }, 'max_output_tokens'],
      [{ model: 'GPT-4.1', input: 'q', max_output_tokens: 0 }, 'max_output_tokens'],
      [{ model: 'GPT-4.1', input: 'q', tools: {} }, 'tools'],
    ];
    for (const [body, field] of cases) {
      const r = await postChat(proxy.url, body, { path: '/v1/responses' });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(JSON.parse(r.body).error.param, field, JSON.stringify(body));
    }
    assert.equal(responsesCalls().length, 0);
  });

  it('refuses an unknown model with an OpenAI-shaped 404 and a hint', async () => {
    await assert.rejects(proxy.client().responses.create({ model: 'no-such-model', input: 'q' }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.deepEqual(Object.keys(e.error as object).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(e.code, 'model_not_found');
      assert.match(e.message, /GET \/v1\/models/);
      return true;
    });
    assert.equal(responsesCalls().length, 0);
  });

  it('retries a 429 before the first byte, then relays a non-retryable error in OpenAI shape', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, headers: { 'retry-after': '0' } }, { path: '/v1/responses' });
    const ok = await proxy.client().responses.create({ model: 'GPT-4.1', input: 'again' });
    assert.equal(ok.output_text, 'Echo: again');
    fake.enqueueFault({ kind: 'status', status: 401, message: 'Invalid API key provided' }, { path: '/v1/responses' });
    await assert.rejects(proxy.client().responses.create({ model: 'GPT-4.1', input: 'q' }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.AuthenticationError);
      assert.equal(e.code, 'upstream_401');
      assert.match(e.message, /Invalid API key provided.*poe\.com\/api_key/);
      return true;
    });
    const entries = await ledgerEntries(proxy, 2);
    assert.deepEqual(
      entries.map((e) => [e.status, e.retries, e.httpStatus]),
      [
        ['ok', 1, 200],
        ['error', 0, 401],
      ],
    );
  });

  it('ends a stream that breaks mid-way with an error event and records the error', async () => {
    fake.reply = () => ({ chunks: ['one ', 'two ', 'three ', 'four '] });
    fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 5 }, { path: '/v1/responses' });
    const stream = await proxy.client().responses.create({ model: 'GPT-4.1', input: 'q', stream: true });
    let text = '';
    let last: OpenAI.Responses.ResponseStreamEvent | undefined;
    for await (const ev of stream) {
      last = ev;
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.ok(text.length > 0, 'content before the break was delivered');
    assert.equal(last?.type, 'error');
    assert.match((last as OpenAI.Responses.ResponseErrorEvent).message, /broke off|incomplete/);
    const [entry] = await ledgerEntries(proxy, 1);
    assert.equal(entry.status, 'error');
    assert.equal(entry.endpoint, 'responses');
  });

  it('aborts the upstream request when the client disconnects', async () => {
    fake.reply = () => ({ chunks: Array.from({ length: 200 }, (_, i) => `w${i} `), chunkDelayMs: 20 });
    const aborted = fake.waitForAbort(5000);
    const controller = new AbortController();
    const stream = await proxy.client().responses.create({ model: 'GPT-4.1', input: 'long', stream: true }, { signal: controller.signal });
    let n = 0;
    try {
      for await (const ev of stream) {
        if (ev.type === 'response.output_text.delta' && ++n === 3) controller.abort();
      }
    } catch {
      /* some SDK versions throw on their own abort */
    }
    const rec = await aborted;
    assert.equal(rec.path, '/v1/responses');
    assert.ok(rec.chunksSent < 200, `Poe stopped after ${rec.chunksSent} frames`);
    const [entry] = await ledgerEntries(proxy, 1);
    assert.equal(entry.status, 'aborted');
  });
});
