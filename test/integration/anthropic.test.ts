/**
 * Anthropic Messages through the proxy, driven by the official @anthropic-ai/sdk against the fake Poe
 * (which speaks Anthropic's Messages API on /v1/messages).
 */
import { strict as assert } from 'node:assert';
import Anthropic from '@anthropic-ai/sdk';
import { countPromptTokens } from '../support/fake/reply';
import { FakePoe, type RecordedRequest } from '../support/fake/server';
import { ledgerEntries, postChat, reconciledEntries, refusedCounts } from '../support/rawClient';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

const MODEL = 'Claude-Sonnet-4.5';

describe('Anthropic Messages through the proxy (@anthropic-ai/sdk)', function () {
  let fake: FakePoe;
  let proxy: TestProxy;
  const messagesCalls = (): RecordedRequest[] => fake.requests.filter((r) => r.path.startsWith('/v1/messages'));
  const anthropic = (opts: { apiKey?: string | null; authToken?: string } = {}): Anthropic =>
    new Anthropic({ baseURL: proxy.url, apiKey: opts.apiKey === undefined ? 'client-own-key' : opts.apiKey, authToken: opts.authToken ?? null, maxRetries: 0 });

  fakePoeHooks({ setFake: (f) => (fake = f), setProxy: (p) => (proxy = p), currentProxy: () => proxy });

  it('answers a non-streaming message with Poe content, forwarding anthropic-version and the Poe key only', async () => {
    const msg = await anthropic().messages.create(
      { model: 'claude-sonnet', max_tokens: 200, messages: [{ role: 'user', content: 'hello there' }] },
      { headers: { 'anthropic-version': '2023-06-01' } },
    );
    assert.equal(msg.type, 'message');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Echo: hello there' }]);
    assert.equal(msg.stop_reason, 'end_turn');
    const [up] = messagesCalls();
    assert.equal(up.body.model, MODEL, 'the alias is resolved to the poe_name');
    assert.equal(up.headers['anthropic-version'], '2023-06-01');
    assert.equal(up.headers.authorization, 'Bearer test-poe-key');
    assert.equal(up.headers['x-api-key'], undefined, "the client's own key is never forwarded");
    assert.ok(!JSON.stringify(up.headers).includes('client-own-key'));
    assert.equal(msg.usage.input_tokens, countPromptTokens(up.body), "Poe's usage reaches the client untouched");

    const [entry] = await reconciledEntries(proxy, 1);
    const charged = fake.pointsHistory()[0];
    assert.equal(entry.endpoint, 'messages');
    assert.equal(entry.model, MODEL);
    assert.equal(entry.status, 'ok');
    assert.equal(entry.stream, false);
    assert.equal(entry.tokensIn, msg.usage.input_tokens);
    assert.equal(entry.tokensOut, msg.usage.output_tokens);
    assert.equal(entry.points, charged.cost_points, "points come from Poe's usage history");
    assert.equal(entry.pointsEstimated, false);
  });

  it("carries Claude Code's mid-conversation system messages to Poe folded into the user turns, in order, as <system-reminder> blocks", async () => {
    // As Claude Code 2.1.x sends them for Haiku and its own default ids: role "system" inside messages, under a beta Poe is not known to take.
    const beta = 'claude-code-20250219,mid-conversation-system-2026-04-07,interleaved-thinking-2025-05-14';
    const messages = [
      { role: 'user', content: 'first question' },
      { role: 'system', content: 'The user switched to plan mode.' },
      { role: 'assistant', content: [{ type: 'text', text: 'first answer' }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'file contents' }] },
      {
        role: 'system',
        content: [
          { type: 'text', text: 'Todo list changed.' },
          { type: 'text', text: 'Keep it short.', cache_control: { type: 'ephemeral' } },
        ],
      },
    ];
    const msg = await anthropic().messages.create(
      { model: 'claude-sonnet', max_tokens: 100, messages } as unknown as Anthropic.MessageCreateParamsNonStreaming,
      { headers: { 'anthropic-beta': beta } },
    );
    assert.equal(msg.type, 'message');
    const [up] = messagesCalls();
    assert.equal(up.status, 200, 'Poe (the fake, which refuses role system as Anthropic does) accepted it');
    assert.equal(up.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14', 'the mid-conversation beta is not forwarded');
    assert.deepEqual(up.body.messages, [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'first question' },
          { type: 'text', text: '<system-reminder>\nThe user switched to plan mode.\n</system-reminder>' },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: 'first answer' }] },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'file contents' },
          { type: 'text', text: '<system-reminder>\nTodo list changed.\n\nKeep it short.\n</system-reminder>', cache_control: { type: 'ephemeral' } },
        ],
      },
    ]);
  });

  it('streams a request with mid-conversation system messages too (Claude Code streams every turn)', async () => {
    const messages = [
      { role: 'user', content: 'hi' },
      { role: 'system', content: 'reminder' },
    ];
    const stream = anthropic().messages.stream({ model: 'claude-sonnet', max_tokens: 100, messages } as unknown as Anthropic.MessageStreamParams, {
      headers: { 'anthropic-beta': 'mid-conversation-system-2026-04-07' },
    });
    const final = await stream.finalMessage();
    assert.match((final.content[0] as Anthropic.TextBlock).text, /^Echo: hi\n<system-reminder>\nreminder\n<\/system-reminder>$/);
  });

  it('answers a malformed body with an Anthropic-shaped 400 naming the problem, without calling Poe', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ model: MODEL, max_tokens: 10 }, /messages/],
      [{ model: MODEL, max_tokens: 10, messages: 'x' }, /messages/],
      [{ model: MODEL, max_tokens: 10, messages: [{ role: 'tool', content: 'x' }] }, /messages\[0\]/],
      [{ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 5 }] }, /messages\[0\]\.content/],
      [{ model: MODEL, messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
      [{ model: MODEL, max_tokens: 'lots', messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
    ];
    for (const [body, problem] of cases) {
      const r = await postChat(proxy.url, body, { path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' } });
      assert.equal(r.status, 400, JSON.stringify(body));
      const err = JSON.parse(r.body);
      assert.equal(err.type, 'error');
      assert.equal(err.error.type, 'invalid_request_error');
      assert.match(err.error.message, problem, JSON.stringify(body));
    }
    assert.equal(messagesCalls().length, 0);
  });

  it('relays a stream event by event as Poe sends it, with usage in the ledger', async () => {
    const words = Array.from({ length: 12 }, (_, i) => `word${i} `);
    fake.reply = () => ({ chunks: words, chunkDelayMs: 40 });
    const stream = anthropic().messages.stream({ model: MODEL, max_tokens: 500, messages: [{ role: 'user', content: 'count' }] });
    const pieces: string[] = [];
    let upstreamDoneAtFirstText: boolean | undefined;
    stream.on('text', (t) => {
      if (pieces.length === 0) upstreamDoneAtFirstText = messagesCalls()[0]?.completed;
      pieces.push(t);
    });
    const final = await stream.finalMessage();
    assert.equal(upstreamDoneAtFirstText, false, 'the first text arrived while Poe was still streaming (nothing buffered)');
    assert.deepEqual(pieces, words, 'every delta arrives intact and in order');
    assert.deepEqual(final.content, [{ type: 'text', text: words.join('') }]);
    assert.ok(final.usage.output_tokens > 1);

    const [entry] = await reconciledEntries(proxy, 1);
    assert.equal(entry.endpoint, 'messages');
    assert.equal(entry.stream, true);
    assert.equal(entry.status, 'ok');
    assert.equal(entry.tokensIn, final.usage.input_tokens);
    assert.equal(entry.tokensOut, final.usage.output_tokens);
    assert.equal(entry.points, fake.pointsHistory()[0].cost_points);
  });

  it('keeps a stream alive with SSE comments while Poe has not answered yet', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { keepAliveIntervalMs: 50 });
    fake.reply = async () => {
      await new Promise((r) => setTimeout(r, 600));
      return { content: 'late but fine' };
    };
    const res = await fetch(`${proxy.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'q' }] }),
    });
    const text = await res.text();
    assert.ok(text.startsWith(': ping\n\n'), text.slice(0, 80));
    assert.ok(text.indexOf('event: message_start') > text.indexOf(': ping'));
    assert.match(text, /event: message_stop/);
    const viaSdk = await anthropic()
      .messages.stream({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: 'q' }] })
      .finalMessage();
    assert.equal((viaSdk.content[0] as Anthropic.TextBlock).text, 'late but fine', 'the SDK ignores the comments');
  });

  it('drops anthropic-beta values Poe does not know and keeps the ones it accepts', async () => {
    const msg = await anthropic().messages.create(
      { model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'anthropic-beta': 'claude-code-20250219, interleaved-thinking-2025-05-14,oauth-2025-04-20' } },
    );
    assert.equal(msg.content[0].type, 'text');
    assert.equal(messagesCalls()[0].headers['anthropic-beta'], 'interleaved-thinking-2025-05-14');
    await anthropic().messages.create(
      { model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'anthropic-beta': 'claude-code-20250219' } },
    );
    assert.equal(messagesCalls()[1].headers['anthropic-beta'], undefined, 'no header at all when nothing is left');
  });

  it('sends the paused message in Anthropic format below the cutoff, without calling Poe', async () => {
    await proxy.close();
    fake.balance = 500;
    proxy = await startProxy(fake, { pointsCutoff: 1000 });
    const msg = await anthropic().messages.create({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'q' }] });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.match((msg.content[0] as Anthropic.TextBlock).text, /paused.*500 points, below the cutoff of 1,000/);
    const streamed = await anthropic()
      .messages.stream({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'q' }] })
      .finalMessage();
    assert.match((streamed.content[0] as Anthropic.TextBlock).text, /paused/);
    assert.equal(streamed.stop_reason, 'end_turn');
    assert.equal(messagesCalls().length, 0);
    assert.deepEqual(await refusedCounts(proxy), { paused: 2 });
    assert.deepEqual(await proxy.ledger.read(), [], 'nothing reached Poe: no ledger lines');
  });

  it('refuses a request above the per-message cap before calling Poe', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { maxPointsPerMessage: 1000 });
    await assert.rejects(anthropic().messages.create({ model: MODEL, max_tokens: 20_000, messages: [{ role: 'user', content: 'q' }] }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.BadRequestError);
      assert.match(e.message, /Refused before calling Poe.*per-message cap of 1,000/);
      return true;
    });
    const ok = await anthropic().messages.create({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'q' }] });
    assert.equal((ok.content[0] as Anthropic.TextBlock).text, 'Echo: q');
    assert.equal(messagesCalls().length, 1);
    const entries = await ledgerEntries(proxy, 1);
    assert.deepEqual(
      entries.map((e) => e.status),
      ['ok'],
      'only the request that reached Poe is a line',
    );
    assert.deepEqual(await refusedCounts(proxy), { over_budget: 1 });
  });

  it('answers count_tokens locally, without calling Poe', async () => {
    const short = await anthropic().messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] });
    const long = await anthropic().messages.countTokens({
      model: MODEL,
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'hello '.repeat(200) }],
      tools: [{ name: 'read', description: 'reads a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } }],
    });
    assert.ok(short.input_tokens > 0);
    assert.ok(long.input_tokens > short.input_tokens + 150, `${long.input_tokens} vs ${short.input_tokens}`);
    assert.equal(fake.requests.length, 0, 'Poe was not called at all');
    assert.deepEqual(await proxy.ledger.read(), [], 'counting is not a billable request');
  });

  it("lists the Claude models in Anthropic's shape when the request carries anthropic-version", async () => {
    const page = await anthropic().models.list();
    const ids = page.data.map((m) => m.id);
    assert.deepEqual(ids, [MODEL]);
    assert.equal(page.data[0].type, 'model');
    assert.equal(typeof page.data[0].display_name, 'string');
    assert.ok(!Number.isNaN(Date.parse(page.data[0].created_at)));
    const openaiShape = (await (await fetch(`${proxy.url}/v1/models`)).json()) as { object: string; data: Array<{ id: string }> };
    assert.equal(openaiShape.object, 'list', 'without anthropic-version: the OpenAI list');
    assert.ok(openaiShape.data.some((m) => m.id === 'GPT-4.1'));
  });

  it('refuses non-Claude and unknown models with Anthropic-shaped errors and a hint', async () => {
    await assert.rejects(anthropic().messages.create({ model: 'GPT-4.1', max_tokens: 10, messages: [{ role: 'user', content: 'q' }] }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.BadRequestError);
      assert.deepEqual(Object.keys(e.error as object).sort(), ['error', 'type']);
      assert.equal((e.error as { type: string }).type, 'error');
      assert.equal((e.error as { error: { type: string } }).error.type, 'invalid_request_error');
      assert.match(e.message, /not a Claude model.*\/v1\/chat\/completions/);
      return true;
    });
    await assert.rejects(
      anthropic().messages.create({ model: 'claude-nonexistent', max_tokens: 10, messages: [{ role: 'user', content: 'q' }] }),
      (e: unknown) => {
        assert.ok(e instanceof Anthropic.NotFoundError);
        assert.equal((e.error as { error: { type: string } }).error.type, 'not_found_error');
        assert.match(e.message, /GET \/v1\/models/);
        return true;
      },
    );
    assert.equal(messagesCalls().length, 0);
  });

  it("relays Poe's errors in Anthropic's shape, retrying 5xx before the first byte", async () => {
    fake.enqueueFault({ kind: 'status', status: 503 }, { path: '/v1/messages' });
    const ok = await anthropic().messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'again' }] });
    assert.equal((ok.content[0] as Anthropic.TextBlock).text, 'Echo: again');
    assert.equal(messagesCalls().length, 2);
    fake.enqueueFault({ kind: 'status', status: 400, message: 'messages.0.content: bad block' }, { path: '/v1/messages' });
    await assert.rejects(anthropic().messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'q' }] }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.BadRequestError);
      assert.equal((e.error as { error: { type: string } }).error.type, 'invalid_request_error');
      assert.match(e.message, /bad block/);
      return true;
    });
    const entries = await ledgerEntries(proxy, 2);
    assert.deepEqual(
      entries.map((e) => [e.status, e.retries]),
      [
        ['ok', 1],
        ['error', 0],
      ],
    );
  });

  it('ends a stream that breaks mid-way with an Anthropic error event', async () => {
    fake.reply = () => ({ chunks: ['one ', 'two ', 'three ', 'four '] });
    fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 4 }, { path: '/v1/messages' });
    const stream = anthropic().messages.stream({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'q' }] });
    let got = '';
    stream.on('text', (t) => (got += t));
    await assert.rejects(stream.finalMessage(), /broke off|incomplete/);
    assert.ok(got.length > 0, 'content before the break was delivered');
    const [entry] = await ledgerEntries(proxy, 1);
    assert.equal(entry.status, 'error');
    assert.equal(entry.endpoint, 'messages');
  });

  it('aborts the upstream request when the client disconnects', async () => {
    fake.reply = () => ({ chunks: Array.from({ length: 200 }, (_, i) => `w${i} `), chunkDelayMs: 20 });
    const aborted = fake.waitForAbort(5000);
    const stream = anthropic().messages.stream({ model: MODEL, max_tokens: 1000, messages: [{ role: 'user', content: 'long' }] });
    let n = 0;
    stream.on('text', () => {
      if (++n === 3) stream.abort();
    });
    await stream.done().catch(() => undefined);
    const rec = await aborted;
    assert.equal(rec.path, '/v1/messages');
    assert.ok(rec.chunksSent < 200, `Poe stopped after ${rec.chunksSent} frames`);
    const [entry] = await ledgerEntries(proxy, 1);
    assert.equal(entry.status, 'aborted');
    assert.equal(entry.httpStatus, 499);
  });

  it('ends an in-flight stream with an Anthropic error event when the proxy stops', async () => {
    fake.reply = () => ({ chunks: Array.from({ length: 200 }, (_, i) => `w${i} `), chunkDelayMs: 20 });
    const stream = anthropic().messages.stream({ model: MODEL, max_tokens: 1000, messages: [{ role: 'user', content: 'long' }] });
    let n = 0;
    const flowing = new Promise<void>((resolve) => stream.on('text', () => ++n === 3 && resolve()));
    const outcome = stream.finalMessage().then(
      () => undefined,
      (e: unknown) => e,
    );
    await flowing;
    await proxy.server.close(50);
    const err = await outcome;
    assert.ok(err instanceof Anthropic.APIError, String(err));
    assert.match(err.message, /shutting down/);
  });

  it('accepts the local access key as x-api-key or Bearer and never forwards it', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { accessKey: 'local-access-key-123' });
    const viaXApiKey = await anthropic({ apiKey: 'local-access-key-123' }).messages.create({
      model: MODEL,
      max_tokens: 10,
      messages: [{ role: 'user', content: 'a' }],
    });
    assert.equal((viaXApiKey.content[0] as Anthropic.TextBlock).text, 'Echo: a');
    const viaBearer = await anthropic({ apiKey: null, authToken: 'local-access-key-123' }).messages.create({
      model: MODEL,
      max_tokens: 10,
      messages: [{ role: 'user', content: 'b' }],
    });
    assert.equal((viaBearer.content[0] as Anthropic.TextBlock).text, 'Echo: b');
    await assert.rejects(
      anthropic({ apiKey: 'wrong' }).messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'c' }] }),
      (e: unknown) => {
        assert.ok(e instanceof Anthropic.AuthenticationError);
        assert.equal((e.error as { error: { type: string } }).error.type, 'authentication_error');
        return true;
      },
    );
    assert.equal(messagesCalls().length, 2);
    for (const r of fake.requests) assert.ok(!JSON.stringify(r.headers).includes('local-access-key-123'), `access key leaked to ${r.path}`);
  });
});
