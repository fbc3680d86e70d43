/**
 * The proxy's main job, driven by the official openai SDK against the fake Poe upstream.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import OpenAI from 'openai';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

async function rawRequest(
  url: string,
  opts: { method?: string; path: string; body?: string; headers?: Record<string, string> },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: opts.path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('chat completions through the proxy (openai SDK)', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), setProxy: (p) => (proxy = p), currentProxy: () => proxy });

  it('answers a non-streaming request with Poe content, usage with points, and a footer', async () => {
    const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'hello there' }] });
    const content = res.choices[0].message.content ?? '';
    assert.ok(content.startsWith('Echo: hello there'), content);
    assert.match(content, /Tokens: \d+/);
    assert.match(content, /Points: [\d,]+/);
    const usage = res.usage as OpenAI.CompletionUsage & { cost_points?: number; cost_points_estimated?: boolean };
    assert.ok(usage.prompt_tokens > 0);
    const entry = fake.pointsHistory().at(-1)!;
    assert.equal(usage.cost_points, entry.cost_points, 'points come from the usage API entry');
    assert.equal(usage.cost_points_estimated, false);
    const upstream = fake.chatRequests()[0];
    assert.equal(upstream.headers.authorization, 'Bearer test-poe-key', "the client's own key is never forwarded");
    assert.equal(upstream.body.stream, false);
  });

  it('streams chunk by chunk and ends with the footer before finish_reason', async () => {
    const stream = await proxy
      .client()
      .chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'one two three four' }], stream: true });
    const deltas: string[] = [];
    let finish: string | null = null;
    let finishSeenBeforeFooter = false;
    let sawUsage = false;
    for await (const ch of stream) {
      if (ch.usage) sawUsage = true;
      const c = ch.choices[0];
      if (!c) continue;
      if (c.delta?.content) {
        if (finish) finishSeenBeforeFooter = true;
        deltas.push(c.delta.content);
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
    assert.ok(deltas.length >= 4, `several chunks, got ${deltas.length}`);
    const text = deltas.join('');
    assert.ok(text.startsWith('Echo: one two three four'), text);
    assert.match(deltas.at(-1)!, /Tokens: \d+/, 'footer is the last content delta');
    assert.equal(finish, 'stop');
    assert.equal(finishSeenBeforeFooter, false);
    assert.equal(sawUsage, false, 'usage chunk only for clients that asked');
    assert.deepEqual(fake.chatRequests()[0].body.stream_options, { include_usage: true }, 'usage always requested upstream');
  });

  it('forwards the usage chunk (with cost) when the client asks for it', async () => {
    const stream = await proxy
      .client()
      .chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let usage: (OpenAI.CompletionUsage & { cost_points?: number }) | undefined;
    for await (const ch of stream) if (ch.usage) usage = ch.usage;
    assert.ok(usage, 'usage chunk received');
    assert.ok(usage.total_tokens > 0);
    assert.equal(usage.cost_points, fake.pointsHistory().at(-1)!.cost_points);
  });

  it('delivers streamed tool calls intact and never puts a footer on them', async () => {
    fake.reply = () => ({
      toolCalls: [
        { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
        { id: 'call_2', name: 'get_time', arguments: '{"tz":"Europe/Paris"}' },
      ],
    });
    const runner = proxy.client().chat.completions.stream({
      model: 'GPT-4.1',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
    });
    const final = await runner.finalChatCompletion();
    const msg = final.choices[0].message;
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(msg.tool_calls?.length, 2);
    const call = msg.tool_calls![0] as { function: { name: string; arguments: string } };
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', unit: 'celsius' });
    assert.ok(!(msg.content ?? '').includes('Tokens:'), 'no footer on a tool-call response');
    assert.ok(Array.isArray(fake.chatRequests()[0].body.tools), 'tools passed through');
  });

  it('passes OpenAI params through and forces n to 1', async () => {
    await proxy.client().chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'x' }],
      temperature: 0.3,
      top_p: 0.9,
      max_tokens: 50,
      stop: ['END'],
      n: 3,
      response_format: { type: 'text' },
    });
    const body = fake.chatRequests()[0].body;
    assert.equal(body.model, 'Claude-Sonnet-4.5', 'alias resolved to the Poe name');
    assert.equal(body.temperature, 0.3);
    assert.equal(body.top_p, 0.9);
    assert.equal(body.max_tokens, 50);
    assert.deepEqual(body.stop, ['END']);
    assert.equal(body.n, 1);
    assert.deepEqual(body.response_format, { type: 'text' });
  });

  it('lists the registry models in OpenAI shape with modality and context size', async () => {
    const list = await proxy.client().models.list();
    const ids = list.data.map((m) => m.id);
    assert.deepEqual(ids, ['GPT-4.1', 'Claude-Sonnet-4.5', 'Gemini-2.5-Pro', 'Small-Bot', 'GPT-Image-1']);
    const m = list.data[0] as OpenAI.Model & { modality?: string; context_length?: number };
    assert.equal(m.object, 'model');
    assert.equal(m.modality, 'text');
    assert.equal(m.context_length, 200000);
  });

  it('answers an unknown model with 404 and a hint, without calling Poe', async () => {
    await assert.rejects(proxy.client().chat.completions.create({ model: 'No-Such-Model', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.match(e.message, /GET \/v1\/models/);
      assert.equal((e.error as { code?: string }).code, 'model_not_found');
      return true;
    });
    assert.equal(fake.chatRequests().length, 0);
  });

  it('answers 401 with a how-to hint when no key is configured, without calling Poe', async () => {
    const noKey = await startProxy(fake, {}, { apiKey: null });
    try {
      await assert.rejects(noKey.client().chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.AuthenticationError);
        assert.match(e.message, /Set API Key|POE_API_KEY/);
        return true;
      });
      assert.equal(fake.chatRequests().length, 0);
    } finally {
      await noKey.close();
    }
  });

  for (const [status, cls, hint] of [
    [401, OpenAI.AuthenticationError, /api_key/],
    [402, OpenAI.APIError, /balance/],
    [429, OpenAI.RateLimitError, /rate limit/],
    [500, OpenAI.InternalServerError, /server error/],
  ] as const) {
    it(`relays Poe's ${status} with Poe's message and a hint`, async () => {
      fake.enqueueFault({ kind: 'status', status, message: `poe says ${status}` }, { times: 5 });
      await assert.rejects(proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
        assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
        assert.equal((e as InstanceType<typeof OpenAI.APIError>).status, status);
        assert.match((e as Error).message, new RegExp(`poe says ${status}`));
        assert.match((e as Error).message, hint);
        return true;
      });
    });
  }

  it('rejects malformed JSON and wrong-typed fields with 400 naming the field', async () => {
    const bad = await rawRequest(proxy.url, {
      method: 'POST',
      path: '/v1/chat/completions',
      body: '{"model": "GPT-4.1", ',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).error.code, 'invalid_json');
    const wrong = await rawRequest(proxy.url, {
      method: 'POST',
      path: '/v1/chat/completions',
      body: JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }], max_tokens: 'many' }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(wrong.status, 400);
    const err = JSON.parse(wrong.body).error;
    assert.equal(err.param, 'max_tokens');
    assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(fake.chatRequests().length, 0);
  });

  it('aborts the upstream request as soon as a streaming client disconnects', async () => {
    fake.reply = () => ({ chunks: Array.from({ length: 200 }, (_, i) => `w${i} `), chunkDelayMs: 20 });
    const controller = new AbortController();
    const stream = await proxy
      .client()
      .chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'long' }], stream: true }, { signal: controller.signal });
    const aborted = fake.waitForAbort(3000);
    let n = 0;
    // The openai SDK ends the iteration quietly (no throw) when its own signal aborts.
    for await (const _ of stream) {
      if (++n === 3) controller.abort();
    }
    assert.ok(n >= 3 && n < 200, `${n} chunks: the stream must stop early`);
    const rec = await aborted;
    assert.equal(rec.aborted, true);
    assert.equal(rec.path, '/v1/chat/completions');
  });

  it('serves /health identifying the proxy', async () => {
    const r = await rawRequest(proxy.url, { path: '/health', headers: {} });
    assert.equal(r.status, 200);
    const h = JSON.parse(r.body);
    assert.equal(h.name, 'poe-proxy');
    assert.equal(h.pid, process.pid);
    assert.equal(h.upstream, fake.url);
    assert.ok(!r.body.includes('test-poe-key'), 'no key in health');
  });

  it('answers without a stream field as JSON, or as a stream with streamByDefault', async () => {
    const body = JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] });
    const headers = { 'content-type': 'application/json' };
    const json = await rawRequest(proxy.url, { method: 'POST', path: '/v1/chat/completions', body, headers });
    assert.match(String(json.headers['content-type']), /application\/json/);
    const streaming = await startProxy(fake, { streamByDefault: true });
    try {
      const sse = await rawRequest(streaming.url, { method: 'POST', path: '/v1/chat/completions', body, headers });
      assert.match(String(sse.headers['content-type']), /text\/event-stream/);
      assert.match(sse.body, /data: \[DONE\]/);
    } finally {
      await streaming.close();
    }
  });

  it('calls media models without streaming and still streams to a client that asked', async () => {
    fake.reply = () => ({ content: 'https://poe.example/image.png' });
    const stream = await proxy.client().chat.completions.create({ model: 'GPT-Image-1', messages: [{ role: 'user', content: 'a cat' }], stream: true });
    let text = '';
    for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    assert.ok(text.startsWith('https://poe.example/image.png'), text);
    assert.equal(fake.chatRequests()[0].body.stream, false);
  });

  it('echoes Poe rate-limit headers', async () => {
    const r = await proxy
      .client()
      .chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    assert.equal(r.response.headers.get('x-ratelimit-limit-requests'), '500');
  });
});
