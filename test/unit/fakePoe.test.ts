/**
 * Tests of the fake Poe upstream itself, with plain fetch / node:http and with the official SDKs pointed at it.
 */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { DEVELOPER_ROLE_MESSAGE } from '../support/fake/chat';
import { MID_CONVERSATION_SYSTEM_BETA } from '../support/fake/messages';
import { countPromptTokens, estimateTokens, schemaInstance, NO_USER_MESSAGE_TEXT, splitWords } from '../support/fake/reply';
import { FakePoe, type RecordedRequest } from '../support/fake/server';
import { defaultCostPoints } from '../support/fake/usage';
import { waitFor } from '../support/wait';

const KEY = 'test-poe-key';

/** fetch's Response with json() typed loosely, for terse assertions. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const loose = (p: Promise<Response>) => p as Promise<Res>;

interface Frame {
  event?: string;
  data: string;
}

function parseSse(text: string): Frame[] {
  const frames: Frame[] = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    const f: Frame = { data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) f.event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    f.data = data.join('\n');
    frames.push(f);
  }
  return frames;
}

function jsonOrUndefined(s: string): any {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function user(content: string): OpenAI.ChatCompletionMessageParam[] {
  return [{ role: 'user', content }];
}

/** The shared waitFor at the fake's pace: 5 ms polls, 2 s at most. */
async function waitUntil(pred: () => boolean): Promise<void> {
  await waitFor('the fake to get there', pred, 2000, 5);
}

describe('FakePoe', () => {
  let fake: FakePoe;
  let openai: OpenAI;

  const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    loose(
      fetch(fake.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal,
      }),
    );
  const chat = (body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) => post('/v1/chat/completions', body, headers, signal);
  const get = (path: string, key: string | null = KEY) => loose(fetch(fake.url + path, { headers: key === null ? {} : { authorization: `Bearer ${key}` } }));

  before(async () => {
    fake = await FakePoe.start();
    openai = new OpenAI({ apiKey: KEY, baseURL: `${fake.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  describe('basics', () => {
    it('listens on 127.0.0.1 with a url without /v1', () => {
      assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    });

    it('serves GET /v1/models in the OpenAI list shape, also through the SDK', async () => {
      const res = await get('/v1/models', null);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.object, 'list');
      const ids = body.data.map((m: { id: string }) => m.id);
      for (const id of ['GPT-4.1', 'Claude-Sonnet-4.5', 'Gemini-2.5-Pro', 'GPT-Image-1']) assert.ok(ids.includes(id), id);
      assert.deepEqual(Object.keys(body.data[0]).sort(), ['created', 'id', 'object', 'owned_by']);
      assert.equal(body.data[0].object, 'model');
      assert.equal(body.data[0].owned_by, 'poe');
      const sdkIds: string[] = [];
      for await (const m of openai.models.list()) sdkIds.push(m.id);
      assert.deepEqual(sdkIds, ids);
      assert.equal((await openai.models.retrieve('GPT-4.1')).id, 'GPT-4.1');
    });

    it('serves only the configured models', async () => {
      const other = await FakePoe.start({ models: ['Only-Bot'] });
      try {
        const body = await (await loose(fetch(`${other.url}/v1/models`))).json();
        assert.deepEqual(
          body.data.map((m: { id: string }) => m.id),
          ['Only-Bot'],
        );
        const res = await fetch(`${other.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ model: 'GPT-4.1', messages: user('x') }),
        });
        assert.equal(res.status, 404);
      } finally {
        await other.close();
      }
    });

    it('records every request in order, with headers, query and raw body', async () => {
      await get('/usage/current_balance');
      await chat({ model: 'GPT-4.1', messages: user('hi') }, { 'x-custom': 'yes' });
      await get('/v1/models');
      await post('/v1/chat/completions', '{"broken":');
      assert.deepEqual(
        fake.requests.map((r) => `${r.method} ${r.path}`),
        ['GET /usage/current_balance', 'POST /v1/chat/completions', 'GET /v1/models', 'POST /v1/chat/completions'],
      );
      const [c1, c2] = fake.chatRequests();
      assert.equal(fake.chatRequests().length, 2);
      assert.equal(c1.headers['x-custom'], 'yes');
      assert.deepEqual(c1.body.messages, user('hi'));
      assert.equal(c1.rawBody, JSON.stringify({ model: 'GPT-4.1', messages: user('hi') }));
      assert.equal(c1.aborted, false);
      assert.ok(Math.abs(c1.receivedAt - Date.now()) < 5000);
      assert.equal(c2.body, undefined, 'unparsable body');
      assert.equal(c2.rawBody, '{"broken":');
      assert.equal(fake.requests[0].query instanceof URLSearchParams, true);
    });

    it('answers 400 for a malformed JSON body and 404 for unknown routes', async () => {
      const bad = await post('/v1/chat/completions', '{"model": ');
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).error.type, 'invalid_request_error');
      const nf = await get('/v1/nothing-here');
      assert.equal(nf.status, 404);
      assert.equal((await nf.json()).error.type, 'not_found_error');
    });
  });

  describe('chat completions, non-streaming', () => {
    it('echoes the last user message with usage, the OpenAI shape and rate-limit headers', async () => {
      const messages = [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'second' },
            { type: 'text', text: 'question' },
          ],
        },
      ];
      const res = await chat({ model: 'GPT-4.1', messages });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      assert.equal(res.headers.get('x-ratelimit-limit-requests'), '500');
      assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '499');
      assert.ok(Number(res.headers.get('x-ratelimit-reset-requests')) >= 1);
      const body = await res.json();
      assert.equal(body.object, 'chat.completion');
      assert.equal(body.model, 'GPT-4.1');
      assert.match(body.id, /^chatcmpl-/);
      assert.equal(typeof body.created, 'number');
      assert.equal(body.choices.length, 1);
      assert.deepEqual(body.choices[0].message, { role: 'assistant', content: 'Echo: second\nquestion', refusal: null });
      assert.equal(body.choices[0].finish_reason, 'stop');
      const prompt =
        estimateTokens('be brief') + estimateTokens('first question') + estimateTokens('first answer') + estimateTokens('second\nquestion') + 4 * 3;
      assert.equal(body.usage.prompt_tokens, prompt);
      assert.equal(body.usage.prompt_tokens, countPromptTokens({ messages }));
      assert.equal(body.usage.completion_tokens, estimateTokens('Echo: second\nquestion'));
      assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
      const second = await chat({ model: 'GPT-4.1', messages });
      assert.equal(second.headers.get('x-ratelimit-remaining-requests'), '498');
    });

    it('uses a fixed text when there is no user message', async () => {
      const body = await (await chat({ model: 'GPT-4.1', messages: [{ role: 'system', content: 'only system' }] })).json();
      assert.equal(body.choices[0].message.content, NO_USER_MESSAGE_TEXT);
    });

    it('works with the openai SDK', async () => {
      const { data, response } = await openai.chat.completions.create({ model: 'Claude-Sonnet-4.5', messages: user('hello there') }).withResponse();
      assert.equal(data.choices[0].message.content, 'Echo: hello there');
      assert.equal(data.usage?.total_tokens, (data.usage?.prompt_tokens ?? 0) + (data.usage?.completion_tokens ?? 0));
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), '500');
    });

    it('is deterministic: same request, same answer and usage', async () => {
      const a = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('same') });
      const b = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('same') });
      assert.equal(a.choices[0].message.content, b.choices[0].message.content);
      assert.deepEqual(a.usage, b.usage);
      const [p1, p2] = fake.pointsHistory();
      assert.equal(p1.cost_points, p2.cost_points);
    });

    it('returns tool calls with finish_reason tool_calls and null content', async () => {
      fake.reply = () => ({
        toolCalls: [
          { id: 'call_a', name: 'get_weather', arguments: '{"city":"Paris"}' },
          { name: 'noop', arguments: '{}' },
        ],
      });
      const res = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('weather?') });
      const msg = res.choices[0].message;
      assert.equal(res.choices[0].finish_reason, 'tool_calls');
      assert.equal(msg.content, null);
      assert.equal(msg.tool_calls?.length, 2);
      const [a, b] = msg.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
      assert.deepEqual(a, { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
      assert.match(b.id, /^call_/);
      assert.equal(b.function.name, 'noop');
    });

    it('passes the body and the recorded request to a custom reply, and honours usage/finishReason overrides', async () => {
      let seen: { body: any; req: RecordedRequest } | undefined;
      fake.reply = async (body, req) => {
        seen = { body, req };
        return { content: 'custom', finishReason: 'length', usage: { prompt_tokens: 11, completion_tokens: 22 } };
      };
      const res = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x'), temperature: 0.5 });
      assert.equal(seen?.body.temperature, 0.5);
      assert.equal(seen?.req.path, '/v1/chat/completions');
      assert.equal(res.choices[0].message.content, 'custom');
      assert.equal(res.choices[0].finish_reason, 'length');
      assert.deepEqual(res.usage, { prompt_tokens: 11, completion_tokens: 22, total_tokens: 33 });
    });

    it('waits chunkDelayMs per piece before a non-streamed answer', async () => {
      fake.reply = () => ({ chunks: ['a', 'b', 'c'], chunkDelayMs: 40 });
      const t0 = Date.now();
      const res = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') });
      assert.ok(Date.now() - t0 >= 110, `took ${Date.now() - t0} ms`);
      assert.equal(res.choices[0].message.content, 'abc');
    });

    it('answers 500 in the OpenAI shape when the reply function throws', async () => {
      fake.reply = () => {
        throw new Error('boom');
      };
      const res = await chat({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(res.status, 500);
      assert.match((await res.json()).error.message, /boom/);
    });
  });

  describe('chat completions, streaming', () => {
    it('streams word-ish chunks, role first, then finish_reason and [DONE], without usage unless asked', async () => {
      const res = await chat({ model: 'GPT-4.1', stream: true, messages: user('one two three') });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(res.headers.get('x-ratelimit-limit-requests'), '500');
      const frames = parseSse(await res.text());
      assert.equal(frames.at(-1)!.data, '[DONE]');
      const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.data));
      assert.deepEqual(
        chunks.map((c) => c.choices[0]?.delta?.content),
        ['Echo: ', 'one ', 'two ', 'three', undefined],
      );
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      assert.ok(chunks.slice(1).every((c) => c.choices[0].delta.role === undefined));
      assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'GPT-4.1' && c.id === chunks[0].id));
      assert.deepEqual(
        chunks.map((c) => c.choices[0].finish_reason),
        [null, null, null, null, 'stop'],
      );
      assert.ok(
        chunks.every((c) => !('usage' in c)),
        'no usage key at all without include_usage',
      );
    });

    it('appends a usage chunk with choices [] only when stream_options.include_usage is true', async () => {
      const res = await chat({ model: 'GPT-4.1', stream: true, stream_options: { include_usage: true }, messages: user('one two') });
      const frames = parseSse(await res.text());
      assert.equal(frames.at(-1)!.data, '[DONE]');
      const usageChunk = JSON.parse(frames.at(-2)!.data);
      assert.deepEqual(usageChunk.choices, []);
      const prompt = countPromptTokens({ messages: user('one two') });
      const completion = estimateTokens('Echo: one two');
      assert.deepEqual(usageChunk.usage, { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });
      const finish = JSON.parse(frames.at(-3)!.data);
      assert.equal(finish.choices[0].finish_reason, 'stop');
      assert.equal(finish.usage, null, 'OpenAI sends usage: null on the other chunks');
      const noUsage = parseSse(await (await chat({ model: 'GPT-4.1', stream: true, stream_options: { include_usage: false }, messages: user('x') })).text());
      assert.ok(noUsage.every((f) => f.data === '[DONE]' || JSON.parse(f.data).choices.length === 1));
    });

    it('uses custom chunks verbatim', async () => {
      fake.reply = () => ({ chunks: ['Hel', 'lo', ' wor', 'ld!'] });
      const frames = parseSse(await (await chat({ model: 'GPT-4.1', stream: true, messages: user('x') })).text());
      const contents = frames
        .slice(0, -1)
        .map((f) => JSON.parse(f.data).choices[0].delta.content)
        .filter((c) => c !== undefined);
      assert.deepEqual(contents, ['Hel', 'lo', ' wor', 'ld!']);
    });

    it('sends a role chunk with empty content for an empty reply', async () => {
      fake.reply = () => ({ content: '' });
      const frames = parseSse(await (await chat({ model: 'GPT-4.1', stream: true, messages: user('x') })).text());
      assert.deepEqual(JSON.parse(frames[0].data).choices[0].delta, { role: 'assistant', content: '' });
      assert.equal(JSON.parse(frames[1].data).choices[0].finish_reason, 'stop');
    });

    it('reassembles through the openai SDK stream helper, with usage when asked', async () => {
      const stream = openai.chat.completions.stream({ model: 'GPT-4.1', messages: user('alpha beta gamma'), stream_options: { include_usage: true } });
      const deltas: string[] = [];
      stream.on('content', (d) => deltas.push(d));
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0].message.content, 'Echo: alpha beta gamma');
      assert.equal(final.choices[0].message.role, 'assistant');
      assert.equal(final.choices[0].finish_reason, 'stop');
      assert.deepEqual(deltas, ['Echo: ', 'alpha ', 'beta ', 'gamma']);
      assert.equal(final.usage?.prompt_tokens, countPromptTokens({ messages: user('alpha beta gamma') }));
      assert.equal(fake.chatRequests()[0].body.stream, true);
    });

    it('streams tool calls the OpenAI way so the SDK reassembles them', async () => {
      const args = '{"city":"Paris","unit":"celsius","days":3}';
      fake.reply = () => ({
        content: 'Let me check.',
        toolCalls: [
          { id: 'call_w', name: 'get_weather', arguments: args },
          { id: 'call_t', name: 'get_time', arguments: '{"tz":"Europe/Paris"}' },
        ],
      });
      const raw = parseSse(await (await chat({ model: 'GPT-4.1', stream: true, messages: user('x') })).text());
      const chunks = raw.slice(0, -1).map((f) => JSON.parse(f.data));
      const tcDeltas = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
      assert.deepEqual(tcDeltas[0], { index: 0, id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '' } });
      const laterForFirst = tcDeltas.filter((d: any) => d.index === 0).slice(1);
      assert.ok(laterForFirst.length > 1, 'arguments come in several fragments');
      assert.ok(laterForFirst.every((d: any) => d.id === undefined && d.function.name === undefined));
      assert.equal(laterForFirst.map((d: any) => d.function.arguments).join(''), args);
      assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');

      const final = await openai.chat.completions
        .stream({
          model: 'GPT-4.1',
          messages: user('x'),
          tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
        })
        .finalChatCompletion();
      const msg = final.choices[0].message;
      assert.equal(final.choices[0].finish_reason, 'tool_calls');
      assert.equal(msg.content, 'Let me check.');
      assert.deepEqual(
        (msg.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[]).map((t) => [t.id, t.type, t.function.name, t.function.arguments]),
        [
          ['call_w', 'function', 'get_weather', args],
          ['call_t', 'function', 'get_time', '{"tz":"Europe/Paris"}'],
        ],
      );
    });

    it('puts role on the first tool-call delta when there is no text', async () => {
      fake.reply = () => ({ toolCalls: [{ id: 'call_1', name: 'f', arguments: '{"a":1}' }] });
      const frames = parseSse(await (await chat({ model: 'GPT-4.1', stream: true, messages: user('x') })).text());
      const first = JSON.parse(frames[0].data).choices[0].delta;
      assert.equal(first.role, 'assistant');
      assert.equal(first.content, null);
      assert.equal(first.tool_calls[0].id, 'call_1');
      const final = await openai.chat.completions.stream({ model: 'GPT-4.1', messages: user('x') }).finalChatCompletion();
      assert.equal((final.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.arguments, '{"a":1}');
    });

    it('flushes each chunk as it is produced, chunkDelayMs apart', async () => {
      fake.reply = () => ({ chunks: ['a', 'b', 'c', 'd'], chunkDelayMs: 60 });
      const t0 = Date.now();
      const res = await chat({ model: 'GPT-4.1', stream: true, messages: user('x') });
      const reader = res.body!.getReader();
      const arrivals: Array<{ at: number; text: string }> = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arrivals.push({ at: Date.now() - t0, text: Buffer.from(value).toString() });
      }
      const firstContent = arrivals.find((a) => a.text.includes('"content":"a"'))!;
      const lastContent = arrivals.find((a) => a.text.includes('"content":"d"'))!;
      assert.ok(lastContent.at - firstContent.at >= 150, `spread ${lastContent.at - firstContent.at} ms`);
      assert.ok(arrivals.length >= 4, 'arrived in separate reads');
    });

    it('honours backpressure: stops writing while the client does not read', async () => {
      const piece = 'x'.repeat(64 * 1024);
      const total = 400;
      fake.reply = () => ({ chunks: Array.from({ length: total }, () => piece) });
      const url = new URL(fake.url);
      const req = http.request({
        host: url.hostname,
        port: url.port,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      });
      req.end(JSON.stringify({ model: 'GPT-4.1', stream: true, messages: user('x') }));
      const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
      res.pause();
      const rec = fake.chatRequests()[0];
      let last = -1;
      await waitFor(
        'the fake to stop writing',
        () => {
          const same = rec.chunksSent > 0 && rec.chunksSent === last;
          last = rec.chunksSent;
          return same;
        },
        5000,
        100,
      );
      assert.ok(rec.chunksSent > 0, 'started');
      assert.ok(rec.chunksSent < total / 2, `wrote ${rec.chunksSent}/${total} frames to a client that reads nothing`);
      assert.equal(fake.pointsHistory().length, 0, 'not finished');
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.resume();
      await new Promise((r) => res.on('end', r));
      assert.ok(bytes > total * piece.length);
      assert.equal(rec.chunksSent, total + 2, 'all content frames + finish + [DONE]');
      assert.equal(rec.completed, true);
      assert.equal(fake.pointsHistory().length, 1);
    });
  });

  describe('validation', () => {
    it('rejects a missing or wrong key with 401 authentication_error', async () => {
      for (const headers of [{ authorization: '' }, { authorization: 'Bearer nope' }, { authorization: KEY }]) {
        const res = await chat({ model: 'GPT-4.1', messages: user('x') }, headers);
        assert.equal(res.status, 401);
        const err = (await res.json()).error;
        assert.equal(err.type, 'authentication_error');
        assert.equal(typeof err.message, 'string');
        assert.ok(err.code);
      }
      const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${fake.url}/v1`, maxRetries: 0 });
      await assert.rejects(bad.chat.completions.create({ model: 'GPT-4.1', messages: user('x') }), OpenAI.AuthenticationError);
      assert.equal(fake.pointsHistory().length, 0);
    });

    it('accepts a custom key only', async () => {
      const other = await FakePoe.start({ apiKey: 'sk-other' });
      try {
        const ok = new OpenAI({ apiKey: 'sk-other', baseURL: `${other.url}/v1`, maxRetries: 0 });
        assert.equal((await ok.chat.completions.create({ model: 'GPT-4.1', messages: user('x') })).choices[0].message.content, 'Echo: x');
        const no = new OpenAI({ apiKey: KEY, baseURL: `${other.url}/v1`, maxRetries: 0 });
        await assert.rejects(no.chat.completions.create({ model: 'GPT-4.1', messages: user('x') }), OpenAI.AuthenticationError);
      } finally {
        await other.close();
      }
    });

    it('answers 404 model_not_found for an unknown model (case matters)', async () => {
      for (const model of ['No-Such-Bot', 'gpt-4.1']) {
        const res = await chat({ model, messages: user('x') });
        assert.equal(res.status, 404);
        const err = (await res.json()).error;
        assert.equal(err.code, 'model_not_found');
        assert.match(err.message, new RegExp(model.replace('.', '\\.')));
      }
      await assert.rejects(openai.chat.completions.create({ model: 'No-Such-Bot', messages: user('x') }), OpenAI.NotFoundError);
    });

    it('rejects the developer role like Poe does, and n > 1', async () => {
      const dev = await chat({ model: 'o3', messages: [{ role: 'developer', content: 'rules' }, ...user('x')] });
      assert.equal(dev.status, 400);
      const err = (await dev.json()).error;
      assert.equal(err.message, DEVELOPER_ROLE_MESSAGE);
      assert.equal(err.type, 'invalid_request_error');
      const n2 = await chat({ model: 'GPT-4.1', n: 2, messages: user('x') });
      assert.equal(n2.status, 400);
      const n1 = await chat({ model: 'GPT-4.1', n: 1, messages: user('x') });
      assert.equal(n1.status, 200);
      await assert.rejects(
        openai.chat.completions.create({ model: 'o3', messages: [{ role: 'developer', content: 'rules' }, ...user('x')] }),
        OpenAI.BadRequestError,
      );
    });

    it('accepts only the roles Poe accepts (system, user, assistant, tool) in chat messages', async () => {
      const ok = await chat({
        model: 'GPT-4.1',
        messages: [
          { role: 'system', content: 's' },
          { role: 'user', content: 'u' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'c1', content: 'r' },
        ],
      });
      assert.equal(ok.status, 200);
      for (const role of ['function', 'bot', 'model']) {
        const res = await chat({ model: 'GPT-4.1', messages: [{ role, content: 'x', name: 'f' }, ...user('x')] });
        assert.equal(res.status, 400, role);
        assert.equal((await res.json()).error.message, DEVELOPER_ROLE_MESSAGE);
      }
    });

    it('answers JSON mode with JSON: valid for the json_schema asked (chat and Responses), an object for json_object', async () => {
      const schema = {
        type: 'object',
        properties: {
          name: { type: 'string' },
          age: { type: 'integer', minimum: 3 },
          tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
          kind: { enum: ['a', 'b'] },
          nested: { $ref: '#/$defs/N' },
          maybe: { anyOf: [{ type: 'null' }, { type: 'boolean' }] },
        },
        required: ['name', 'age', 'tags', 'kind', 'nested', 'maybe'],
        additionalProperties: false,
        $defs: { N: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } },
      };
      const expected = { name: 'x', age: 3, tags: ['x', 'x'], kind: 'a', nested: { ok: true }, maybe: true };
      const viaSchema = await openai.chat.completions.create({
        model: 'GPT-4.1',
        messages: user('x'),
        response_format: { type: 'json_schema', json_schema: { name: 'p', schema, strict: true } },
      });
      assert.deepEqual(JSON.parse(viaSchema.choices[0].message.content!), expected);
      const viaObject = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('hi'), response_format: { type: 'json_object' } });
      assert.deepEqual(JSON.parse(viaObject.choices[0].message.content!), { answer: 'Echo: hi' });
      const viaResponses = await openai.responses.create({
        model: 'GPT-4.1',
        input: 'x',
        text: { format: { type: 'json_schema', name: 'p', schema, strict: true } },
      });
      assert.deepEqual(JSON.parse(viaResponses.output_text), expected);
      assert.equal(schemaInstance({ type: ['null', 'number'], minimum: 2.5 }), 2.5);
      const prose = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x'), response_format: { type: 'text' } });
      assert.equal(prose.choices[0].message.content, 'Echo: x');
    });

    it('applies custom rejectWhen predicates, several at once', async () => {
      fake.rejectWhen((b) => (b.max_tokens !== undefined ? 'max_tokens is not supported for this bot' : undefined));
      fake.rejectWhen((b) => (b.top_p !== undefined ? 'top_p unsupported' : undefined));
      const a = await chat({ model: 'GPT-4.1', max_tokens: 5, messages: user('x') });
      assert.equal(a.status, 400);
      assert.equal((await a.json()).error.message, 'max_tokens is not supported for this bot');
      const b = await chat({ model: 'GPT-4.1', top_p: 0.5, messages: user('x') });
      assert.equal((await b.json()).error.message, 'top_p unsupported');
      assert.equal((await chat({ model: 'GPT-4.1', messages: user('x') })).status, 200);
      assert.equal(fake.pointsHistory().length, 1, 'rejected requests cost nothing');
    });

    it('requires model and messages', async () => {
      assert.equal((await chat({ messages: user('x') })).status, 400);
      assert.equal((await chat({ model: 'GPT-4.1' })).status, 400);
      assert.equal((await chat({ model: 'GPT-4.1', messages: [] })).status, 400);
    });
  });

  describe('points and usage API', () => {
    it('deducts each call from the balance and records a points entry', async () => {
      const before = fake.balance;
      const res = await openai.chat.completions.create({ model: 'Gemini-2.5-Pro', messages: user('count me') });
      const expected = defaultCostPoints({ model: 'Gemini-2.5-Pro', promptTokens: res.usage!.prompt_tokens, completionTokens: res.usage!.completion_tokens });
      assert.equal(fake.balance, before - expected);
      const [entry] = fake.pointsHistory();
      assert.equal(entry.bot_name, 'Gemini-2.5-Pro');
      assert.equal(entry.usage_type, 'API');
      assert.equal(entry.cost_points, expected);
      assert.ok(Number.isInteger(entry.cost_points));
      assert.ok(Math.abs(entry.creation_time / 1000 - Date.now()) < 5000, 'creation_time in microseconds');
      assert.ok(entry.creation_time > 1e15);
      assert.equal(typeof entry.query_id, 'string');
      const bal = await (await get('/usage/current_balance')).json();
      assert.deepEqual(bal, { current_point_balance: before - expected });
    });

    it('uses a custom costPoints function, rounded to an integer', async () => {
      const seen: Array<{ model: string; promptTokens: number; completionTokens: number }> = [];
      fake.costPoints = (r) => {
        seen.push(r);
        return 10.4;
      };
      const res = await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') });
      assert.deepEqual(seen, [{ model: 'GPT-4.1', promptTokens: res.usage!.prompt_tokens, completionTokens: res.usage!.completion_tokens }]);
      assert.equal(fake.pointsHistory()[0].cost_points, 10);
      fake.costPoints = () => 77;
      await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(fake.pointsHistory()[1].cost_points, 77);
      assert.equal(fake.balance, 1_000_000 - 87);
    });

    it('answers 402 when the balance is exhausted', async () => {
      fake.balance = 0;
      const res = await chat({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(res.status, 402);
      assert.equal((await res.json()).error.type, 'insufficient_credits');
      assert.equal(fake.pointsHistory().length, 0);
    });

    it('pages points_history most recent first with limit and starting_after', async () => {
      for (let i = 0; i < 5; i++) await openai.chat.completions.create({ model: 'GPT-4.1', messages: user(`q${i}`) });
      const all = fake.pointsHistory();
      assert.equal(all.length, 5);
      const newestFirst = [...all].reverse().map((e) => e.query_id);
      const p1 = await (await get('/usage/points_history?limit=2')).json();
      assert.equal(p1.has_more, true);
      assert.equal(p1.length, 2);
      assert.deepEqual(
        p1.data.map((e: { query_id: string }) => e.query_id),
        newestFirst.slice(0, 2),
      );
      assert.deepEqual(Object.keys(p1.data[0]).sort(), ['bot_name', 'cost_points', 'creation_time', 'query_id', 'usage_type']);
      const p2 = await (await get(`/usage/points_history?limit=2&starting_after=${p1.data[1].query_id}`)).json();
      assert.deepEqual(
        p2.data.map((e: { query_id: string }) => e.query_id),
        newestFirst.slice(2, 4),
      );
      assert.equal(p2.has_more, true);
      const p3 = await (await get(`/usage/points_history?limit=2&starting_after=${p2.data[1].query_id}`)).json();
      assert.equal(p3.length, 1);
      assert.equal(p3.has_more, false);
      const dflt = await (await get('/usage/points_history')).json();
      assert.equal(dflt.length, 5);
      assert.equal(dflt.has_more, false);
      for (const bad of ['0', '101', 'abc', '2.5']) assert.equal((await get(`/usage/points_history?limit=${bad}`)).status, 400, bad);
      assert.equal((await get('/usage/points_history?limit=100')).status, 200);
    });

    it('defaults points_history to 20 entries', async () => {
      for (let i = 0; i < 23; i++) assert.equal((await chat({ model: i === 22 ? 'GPT-5' : 'GPT-4.1', messages: user(`q${i}`) })).status, 200);
      const page = await (await get('/usage/points_history')).json();
      assert.equal(page.length, 20);
      assert.equal(page.has_more, true);
      assert.equal(page.data[0].bot_name, 'GPT-5', 'most recent first');
      assert.equal(page.data[0].usage_type, 'API');
    });

    it('hides entries until pointsLagMs after the response', async () => {
      const lagged = await FakePoe.start({ pointsLagMs: 150 });
      try {
        const c = new OpenAI({ apiKey: KEY, baseURL: `${lagged.url}/v1`, maxRetries: 0 });
        await c.chat.completions.create({ model: 'GPT-4.1', messages: user('x') });
        const history = () => loose(fetch(`${lagged.url}/usage/points_history`, { headers: { authorization: `Bearer ${KEY}` } })).then((r) => r.json());
        assert.equal((await history()).length, 0, 'not visible yet');
        assert.equal(lagged.pointsHistory().length, 1, 'but recorded');
        assert.ok(lagged.balance < 1_000_000, 'balance deducted at once');
        const later = await waitFor('the entry to show', async () => {
          const h = await history();
          return h.length > 0 && h;
        });
        assert.equal(later.length, 1);
        assert.equal(later.data[0].query_id, lagged.pointsHistory()[0].query_id);
      } finally {
        await lagged.close();
      }
    });

    it('answers 401 on the usage endpoints for a bad key', async () => {
      for (const path of ['/usage/current_balance', '/usage/points_history']) {
        for (const key of [null, 'wrong']) {
          const res = await get(path, key);
          assert.equal(res.status, 401, `${path} ${key}`);
          assert.equal((await res.json()).error.type, 'authentication_error');
        }
      }
    });
  });

  describe('faults', () => {
    it('status: answers the status with an OpenAI-shaped error, headers, then recovers', async () => {
      fake.enqueueFault({ kind: 'status', status: 429, message: 'slow down', headers: { 'retry-after': '7' } });
      const res = await chat({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '7');
      const err = (await res.json()).error;
      assert.equal(err.message, 'slow down');
      assert.equal(err.type, 'rate_limit_error');
      assert.equal((await chat({ model: 'GPT-4.1', messages: user('x') })).status, 200);
      assert.equal(fake.chatRequests()[0].fault, 'status');
      assert.equal(fake.chatRequests()[1].fault, undefined);
    });

    it('status: applies `times` times, FIFO, with a raw body when given, and before auth', async () => {
      fake.enqueueFault({ kind: 'status', status: 503 }, { times: 2 });
      fake.enqueueFault({ kind: 'status', status: 502, body: 'upstream <html>' });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await chat({ model: 'GPT-4.1', messages: user('x') }, { authorization: 'Bearer wrong' })).status);
      assert.deepEqual(statuses, [503, 503, 502, 401]);
      fake.enqueueFault({ kind: 'status', status: 502, body: 'upstream <html>' });
      assert.equal(await (await chat({ model: 'GPT-4.1', messages: user('x') })).text(), 'upstream <html>');
    });

    it('status: surfaces through the SDK as the matching error class', async () => {
      for (const [status, cls] of [
        [400, OpenAI.BadRequestError],
        [402, OpenAI.APIError],
        [429, OpenAI.RateLimitError],
        [500, OpenAI.InternalServerError],
        [502, OpenAI.InternalServerError],
        [503, OpenAI.InternalServerError],
      ] as const) {
        fake.enqueueFault({ kind: 'status', status, message: `poe says ${status}` });
        await assert.rejects(openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') }), (e: unknown) => {
          assert.ok(e instanceof cls, `${status}: ${e}`);
          assert.equal((e as InstanceType<typeof OpenAI.APIError>).status, status);
          assert.match((e as Error).message, new RegExp(`poe says ${status}`));
          return true;
        });
      }
    });

    it('matches faults by path; "*" matches any path', async () => {
      fake.enqueueFault({ kind: 'status', status: 500 }, { path: '/usage/current_balance' });
      assert.equal((await chat({ model: 'GPT-4.1', messages: user('x') })).status, 200);
      assert.equal((await get('/usage/current_balance')).status, 500);
      assert.equal((await get('/usage/current_balance')).status, 200);
      fake.enqueueFault({ kind: 'status', status: 503 }, { path: '*' });
      assert.equal((await get('/v1/models')).status, 503);
      fake.enqueueFault({ kind: 'status', status: 503 });
      assert.equal((await get('/usage/current_balance')).status, 200, 'default path is chat completions');
      fake.clearFaults();
      assert.equal((await chat({ model: 'GPT-4.1', messages: user('x') })).status, 200);
    });

    it('refuse: closes the socket at once; the request is still recorded', async () => {
      fake.enqueueFault({ kind: 'refuse' });
      await assert.rejects(chat({ model: 'GPT-4.1', messages: user('x') }), (e: any) => {
        assert.equal(e.name, 'TypeError');
        return true;
      });
      assert.equal(fake.chatRequests().length, 1);
      assert.equal(fake.chatRequests()[0].fault, 'refuse');
      assert.equal(fake.chatRequests()[0].status, undefined);
      assert.equal(fake.chatRequests()[0].aborted, false, 'a fault is not a client abort');
      assert.equal((await chat({ model: 'GPT-4.1', messages: user('x') })).status, 200);
    });

    it('reset-before-headers: the client sees ECONNRESET and no response', async () => {
      fake.enqueueFault({ kind: 'reset-before-headers' });
      await assert.rejects(chat({ model: 'GPT-4.1', messages: user('x') }), (e: any) => {
        assert.equal(e.cause?.code, 'ECONNRESET');
        return true;
      });
      assert.equal(fake.chatRequests()[0].body.model, 'GPT-4.1', 'body was read first');
      await assert.rejects(
        (async () => {
          fake.enqueueFault({ kind: 'reset-before-headers' });
          await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') });
        })(),
        OpenAI.APIConnectionError,
      );
      assert.equal(fake.pointsHistory().length, 0);
    });

    it('stall-before-headers: never answers; waitForAbort resolves when the client gives up', async () => {
      fake.enqueueFault({ kind: 'stall-before-headers' });
      const ac = new AbortController();
      const pending = chat({ model: 'GPT-4.1', messages: user('x') }, {}, ac.signal);
      pending.catch(() => undefined);
      await waitUntil(() => fake.chatRequests().length === 1);
      let settled = false;
      pending.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(settled, false, 'no answer');
      assert.equal(fake.inFlight(), 1);
      const aborted = fake.waitForAbort(2000);
      ac.abort();
      const rec = await aborted;
      assert.equal(rec, fake.chatRequests()[0]);
      assert.equal(rec.aborted, true);
      assert.equal(rec.fault, 'stall-before-headers');
      await waitUntil(() => fake.inFlight() === 0);
    });

    it('reset-mid-stream: delivers afterChunks frames, then ECONNRESET; nothing is charged', async () => {
      fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 2 });
      const res = await chat({ model: 'GPT-4.1', stream: true, messages: user('a b c d e f') });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      let got = '';
      await assert.rejects(async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          got += Buffer.from(value).toString();
        }
      });
      const frames = parseSse(got);
      assert.equal(frames.length, 2);
      assert.deepEqual(
        frames.map((f) => JSON.parse(f.data).choices[0].delta.content),
        ['Echo: ', 'a '],
      );
      const rec = fake.chatRequests()[0];
      assert.equal(rec.chunksSent, 2);
      assert.equal(rec.aborted, false);
      assert.equal(rec.completed, false);
      assert.equal(fake.pointsHistory().length, 0);
      // through the SDK
      fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 3 });
      const stream = await openai.chat.completions.create({ model: 'GPT-4.1', stream: true, messages: user('a b c d e f') });
      let text = '';
      await assert.rejects(async () => {
        for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
      });
      assert.equal(text, 'Echo: a b ');
    });

    it('reset-mid-stream on a non-streaming request cuts the JSON body', async () => {
      fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 1 });
      const res = await chat({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(res.status, 200);
      await assert.rejects(res.text());
    });

    it('stall-mid-stream: delivers afterChunks frames, then silence until the client aborts', async () => {
      fake.enqueueFault({ kind: 'stall-mid-stream', afterChunks: 3 });
      const ac = new AbortController();
      const res = await chat({ model: 'GPT-4.1', stream: true, messages: user('a b c d e f') }, {}, ac.signal);
      const reader = res.body!.getReader();
      let got = '';
      while (parseSse(got).length < 3) {
        const { value } = await reader.read();
        got += Buffer.from(value!).toString();
      }
      const next = reader.read();
      next.catch(() => undefined);
      const winner = await Promise.race([next.then(() => 'data'), new Promise((r) => setTimeout(() => r('silence'), 200))]);
      assert.equal(winner, 'silence');
      assert.equal(parseSse(got).length, 3);
      assert.equal(fake.inFlight(), 1);
      const aborted = fake.waitForAbort(2000);
      ac.abort();
      const rec = await aborted;
      assert.equal(rec.fault, 'stall-mid-stream');
      assert.equal(rec.chunksSent, 3);
      assert.equal(rec.aborted, true);
      assert.equal(fake.pointsHistory().length, 0);
    });

    it('garbage-sse: mixes invalid lines and non-JSON data into an otherwise valid stream', async () => {
      fake.enqueueFault({ kind: 'garbage-sse' });
      const text = await (await chat({ model: 'GPT-4.1', stream: true, stream_options: { include_usage: true }, messages: user('one two three four') })).text();
      const frames = parseSse(text);
      const nonJson = frames.filter((f) => f.data !== '[DONE]' && jsonOrUndefined(f.data) === undefined);
      assert.ok(nonJson.length >= 3, `non-JSON data frames: ${nonJson.length}`);
      assert.ok(
        text.split('\n').some((l) => l && !/^(data|event|id|retry)?:/.test(l) && !l.startsWith(':')),
        'a line that is not SSE at all',
      );
      const valid = frames.map((f) => jsonOrUndefined(f.data)).filter((j) => j && (j.choices || j.usage));
      assert.equal(valid.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Echo: one two three four');
      assert.equal(valid.at(-2).choices[0].finish_reason, 'stop');
      assert.ok(valid.at(-1).usage);
      assert.equal(frames.at(-1)!.data, '[DONE]');
      assert.equal(fake.pointsHistory().length, 1, 'a garbled but complete stream is charged');
      // the openai SDK itself does not tolerate it
      fake.enqueueFault({ kind: 'garbage-sse' });
      await assert.rejects(async () => {
        const stream = await openai.chat.completions.create({ model: 'GPT-4.1', stream: true, messages: user('x y') });
        for await (const _ of stream) void _;
      }, SyntaxError);
    });

    it('invalid-json: 200 with a broken JSON body', async () => {
      fake.enqueueFault({ kind: 'invalid-json' });
      const res = await chat({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const text = await res.text();
      assert.ok(text.length > 0);
      assert.throws(() => JSON.parse(text), SyntaxError);
      fake.enqueueFault({ kind: 'invalid-json' });
      await assert.rejects(openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') }));
      assert.equal(fake.pointsHistory().length, 0);
    });

    it('error-mid-stream (extra): an error event after afterChunks frames', async () => {
      fake.enqueueFault({ kind: 'error-mid-stream', afterChunks: 2, message: 'bot crashed' });
      const stream = await openai.chat.completions.create({ model: 'GPT-4.1', stream: true, messages: user('a b c d') });
      let text = '';
      await assert.rejects(
        async () => {
          for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
        },
        (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError);
          assert.match((e as Error).message, /bot crashed/);
          return true;
        },
      );
      assert.equal(text, 'Echo: a ');
    });

    it('faults apply to the responses and messages endpoints too', async () => {
      fake.enqueueFault({ kind: 'status', status: 529 }, { path: '/v1/messages' });
      const res = await post('/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 10, messages: user('x') }, { 'anthropic-version': '2023-06-01' });
      assert.equal(res.status, 529);
      assert.deepEqual(await res.json(), { type: 'error', error: { type: 'overloaded_error', message: 'Fake upstream error 529' } });
      fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 3 }, { path: '/v1/responses' });
      const stream = await openai.responses.create({ model: 'GPT-4.1', input: 'a b c', stream: true });
      await assert.rejects(async () => {
        for await (const _ of stream) void _;
      });
    });
  });

  describe('connections and aborts', () => {
    it('sees a client abort mid-stream', async () => {
      fake.reply = () => ({ chunks: Array.from({ length: 100 }, (_, i) => `w${i} `), chunkDelayMs: 10 });
      const ac = new AbortController();
      const stream = await openai.chat.completions.create({ model: 'GPT-4.1', stream: true, messages: user('x') }, { signal: ac.signal });
      assert.equal(fake.inFlight(), 1);
      const aborted = fake.waitForAbort(2000);
      let n = 0;
      // note: the openai SDK ends the iteration quietly (no throw) when its request signal aborts
      for await (const _ of stream) if (++n === 3) ac.abort();
      assert.ok(n >= 3 && n < 50, `${n} chunks`);
      const rec = await aborted;
      assert.equal(rec.aborted, true);
      assert.ok(rec.chunksSent < 100);
      await waitUntil(() => fake.inFlight() === 0);
      assert.equal(fake.pointsHistory().length, 0);
    });

    it('waitForAbort delivers an abort that happened before the call, once, and times out otherwise', async () => {
      fake.enqueueFault({ kind: 'stall-before-headers' });
      const ac = new AbortController();
      const p = chat({ model: 'GPT-4.1', messages: user('x') }, {}, ac.signal);
      p.catch(() => undefined);
      await waitUntil(() => fake.inFlight() === 1);
      ac.abort();
      await waitUntil(() => fake.chatRequests()[0].aborted);
      assert.equal((await fake.waitForAbort(500)).fault, 'stall-before-headers');
      await assert.rejects(fake.waitForAbort(50), /no client abort/);
    });

    it('does not count completed requests as aborted', async () => {
      await openai.chat.completions.create({ model: 'GPT-4.1', messages: user('x') });
      await openai.chat.completions.stream({ model: 'GPT-4.1', messages: user('x') }).finalChatCompletion();
      assert.ok(fake.requests.every((r) => !r.aborted && r.completed && r.status === 200));
      await assert.rejects(fake.waitForAbort(30));
    });

    it('close() ends stalled connections', async () => {
      const other = await FakePoe.start();
      other.enqueueFault({ kind: 'stall-before-headers' });
      const p = fetch(`${other.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ model: 'GPT-4.1', messages: user('x') }),
      });
      const outcome = p.then(
        () => 'answered',
        () => 'failed',
      );
      await waitUntil(() => other.inFlight() === 1);
      await other.close();
      assert.equal(await outcome, 'failed');
      assert.equal(other.inFlight(), 0);
    });
  });

  describe('reset()', () => {
    it('clears requests, faults, custom rejections and restores reply, costPoints and balance; the built-in pickiness stays', async () => {
      await chat({ model: 'GPT-4.1', messages: user('x') });
      fake.enqueueFault({ kind: 'status', status: 500 });
      fake.rejectWhen(() => 'no');
      fake.reply = () => ({ content: 'custom' });
      fake.costPoints = () => 999;
      fake.balance = 5;
      fake.reset();
      assert.equal(fake.requests.length, 0);
      assert.equal(fake.pointsHistory().length, 0);
      assert.equal(fake.balance, 1_000_000);
      const res = await chat({ model: 'GPT-4.1', messages: user('x') });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).choices[0].message.content, 'Echo: x');
      assert.notEqual(fake.pointsHistory()[0].cost_points, 999);
      assert.equal((await chat({ model: 'o3', messages: [{ role: 'developer', content: 'rules' }, ...user('x')] })).status, 400);
    });
  });

  describe('Responses API', () => {
    it('answers a non-streaming request the SDK understands', async () => {
      const res = await openai.responses.create({ model: 'GPT-4.1', input: 'hello responses', instructions: 'be nice' });
      assert.equal(res.object, 'response');
      assert.equal(res.status, 'completed');
      assert.equal(res.output_text, 'Echo: hello responses');
      const msg = res.output[0] as OpenAI.Responses.ResponseOutputMessage;
      assert.equal(msg.type, 'message');
      assert.equal(msg.role, 'assistant');
      const prompt = countPromptTokens({ instructions: 'be nice', input: 'hello responses' });
      assert.equal(res.usage?.input_tokens, prompt);
      assert.equal(res.usage?.output_tokens, estimateTokens('Echo: hello responses'));
      assert.equal(res.usage?.total_tokens, prompt + estimateTokens('Echo: hello responses'));
      assert.equal(fake.requests[0].path, '/v1/responses');
      assert.equal(fake.pointsHistory()[0].bot_name, 'GPT-4.1');
    });

    it('reads the last user item of an input array', async () => {
      const res = await openai.responses.create({
        model: 'GPT-4.1',
        input: [
          { role: 'user', content: 'old' },
          { role: 'assistant', content: 'answer' },
          { role: 'user', content: [{ type: 'input_text', text: 'newest' }] },
        ],
      });
      assert.equal(res.output_text, 'Echo: newest');
    });

    it('streams typed events the SDK assembles', async () => {
      const raw = parseSse(await (await post('/v1/responses', { model: 'GPT-4.1', input: 'one two', stream: true })).text());
      const types = raw.map((f) => f.event);
      assert.deepEqual(types, [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      const datas = raw.map((f) => JSON.parse(f.data));
      assert.ok(datas.every((d, i) => d.type === types[i] && d.sequence_number === i));
      assert.ok(!raw.some((f) => f.data === '[DONE]'), 'no [DONE] in the Responses API');

      const stream = openai.responses.stream({ model: 'GPT-4.1', input: 'alpha beta' });
      const deltas: string[] = [];
      stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
      const final = await stream.finalResponse();
      assert.deepEqual(deltas, ['Echo: ', 'alpha ', 'beta']);
      // output_text is an SDK convenience that finalResponse() does not add: read the message parts.
      const text = final.output
        .flatMap((o) => (o.type === 'message' ? o.content : []))
        .map((c) => (c.type === 'output_text' ? c.text : ''))
        .join('');
      assert.equal(text, 'Echo: alpha beta');
      assert.equal(final.usage?.output_tokens, estimateTokens('Echo: alpha beta'));

      const events: string[] = [];
      for await (const e of await openai.responses.create({ model: 'GPT-4.1', input: 'x', stream: true })) events.push(e.type);
      assert.equal(events[0], 'response.created');
      assert.equal(events.at(-1), 'response.completed');
      assert.equal(fake.pointsHistory().length, 3);
    });

    it('returns and streams function calls', async () => {
      fake.reply = () => ({ toolCalls: [{ id: 'call_r', name: 'lookup', arguments: '{"q":"poe api fake"}' }] });
      const res = await openai.responses.create({ model: 'GPT-4.1', input: 'x' });
      assert.deepEqual(
        res.output.map((o) => o.type),
        ['function_call'],
      );
      const fc = res.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
      assert.equal(fc.call_id, 'call_r');
      assert.equal(fc.arguments, '{"q":"poe api fake"}');
      const final = await openai.responses.stream({ model: 'GPT-4.1', input: 'x' }).finalResponse();
      const sfc = final.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
      assert.equal(sfc.name, 'lookup');
      assert.equal(sfc.arguments, '{"q":"poe api fake"}');
    });

    it('checks auth and the model', async () => {
      assert.equal((await post('/v1/responses', { model: 'GPT-4.1', input: 'x' }, { authorization: 'Bearer no' })).status, 401);
      await assert.rejects(openai.responses.create({ model: 'Nope', input: 'x' }), OpenAI.NotFoundError);
    });
  });

  describe('Anthropic Messages API', () => {
    const anthropic = () => new Anthropic({ apiKey: KEY, baseURL: fake.url, maxRetries: 0 });

    it('answers a non-streaming request the SDK understands', async () => {
      const msg = await anthropic().messages.create({
        model: 'claude-sonnet-4-5',
        max_tokens: 100,
        system: 'sys',
        messages: [{ role: 'user', content: 'hello claude' }],
      });
      assert.equal(msg.type, 'message');
      assert.equal(msg.role, 'assistant');
      assert.deepEqual(msg.content, [{ type: 'text', text: 'Echo: hello claude' }]);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.usage.input_tokens, countPromptTokens({ system: 'sys', messages: [{ role: 'user', content: 'hello claude' }] }));
      assert.equal(msg.usage.output_tokens, estimateTokens('Echo: hello claude'));
      const rec = fake.requests[0];
      assert.equal(rec.path, '/v1/messages');
      assert.equal(rec.headers.authorization, `Bearer ${KEY}`, '@anthropic-ai/sdk 1.x sends the key as Bearer, not x-api-key');
      assert.ok(rec.headers['anthropic-version']);
      const viaXApiKey = await post(
        '/v1/messages',
        { model: 'claude-sonnet-4-5', max_tokens: 10, messages: user('k') },
        { authorization: '', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
      );
      assert.equal(viaXApiKey.status, 200);
      assert.equal((await viaXApiKey.json()).content[0].text, 'Echo: k');
      assert.equal(fake.pointsHistory()[0].bot_name, 'claude-sonnet-4-5');
    });

    it('streams the Anthropic event sequence the SDK assembles', async () => {
      const raw = parseSse(
        await (
          await post('/v1/messages', { model: 'Claude-Sonnet-4.5', max_tokens: 50, stream: true, messages: user('a b') }, { 'anthropic-version': '2023-06-01' })
        ).text(),
      );
      assert.deepEqual(
        raw.map((f) => f.event),
        [
          'message_start',
          'content_block_start',
          'ping',
          'content_block_delta',
          'content_block_delta',
          'content_block_delta',
          'content_block_stop',
          'message_delta',
          'message_stop',
        ],
      );
      assert.ok(raw.every((f) => JSON.parse(f.data).type === f.event));
      const delta = JSON.parse(raw.at(-2)!.data);
      assert.equal(delta.delta.stop_reason, 'end_turn');
      assert.equal(delta.usage.output_tokens, estimateTokens('Echo: a b'));

      const stream = anthropic().messages.stream({
        model: 'claude-sonnet-4-5',
        max_tokens: 50,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'stream me' }] }],
      });
      const texts: string[] = [];
      stream.on('text', (t) => texts.push(t));
      const final = await stream.finalMessage();
      assert.deepEqual(texts, ['Echo: ', 'stream ', 'me']);
      assert.deepEqual(final.content, [{ type: 'text', text: 'Echo: stream me' }]);
      assert.equal(final.usage.output_tokens, estimateTokens('Echo: stream me'));
      assert.equal(final.usage.input_tokens, countPromptTokens({ messages: [{ role: 'user', content: 'stream me' }] }));
      assert.equal(final.stop_reason, 'end_turn');
    });

    it('returns and streams tool_use blocks', async () => {
      fake.reply = () => ({ content: 'Checking.', toolCalls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris","days":2}' }] });
      const msg = await anthropic().messages.create({ model: 'claude-opus-4-1', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(msg.stop_reason, 'tool_use');
      assert.deepEqual(msg.content[1], { type: 'tool_use', id: 'toolu_abc', name: 'get_weather', input: { city: 'Paris', days: 2 } });
      const final = await anthropic()
        .messages.stream({ model: 'claude-opus-4-1', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] })
        .finalMessage();
      assert.equal(final.stop_reason, 'tool_use');
      assert.equal((final.content[0] as Anthropic.TextBlock).text, 'Checking.');
      const tu = final.content[1] as Anthropic.ToolUseBlock;
      assert.equal(tu.name, 'get_weather');
      assert.deepEqual(tu.input, { city: 'Paris', days: 2 });
    });

    it('accepts Bearer auth, requires anthropic-version, and answers Anthropic-shaped errors', async () => {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 10, messages: user('x') };
      assert.equal((await post('/v1/messages', body, { 'anthropic-version': '2023-06-01' })).status, 200, 'Bearer');
      const noVersion = await post('/v1/messages', body);
      assert.equal(noVersion.status, 400);
      assert.deepEqual(await noVersion.json(), { type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } });
      const badKey = await post('/v1/messages', body, { authorization: '', 'x-api-key': 'wrong', 'anthropic-version': '2023-06-01' });
      assert.equal(badKey.status, 401);
      assert.equal((await badKey.json()).error.type, 'authentication_error');
      const bad = new Anthropic({ apiKey: 'wrong', baseURL: fake.url, maxRetries: 0 });
      await assert.rejects(
        bad.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
        Anthropic.AuthenticationError,
      );
      const noMax = await post('/v1/messages', { model: 'claude-sonnet-4-5', messages: user('x') }, { 'anthropic-version': '2023-06-01' });
      assert.equal(noMax.status, 400);
      const gpt = await post('/v1/messages', { ...body, model: 'GPT-4.1' }, { 'anthropic-version': '2023-06-01' });
      assert.equal(gpt.status, 404, 'Claude models only');
    });

    it('rejects unknown anthropic-beta values and accepts known ones', async () => {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 10, messages: user('x') };
      const bad = await post('/v1/messages', body, {
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'fine-grained-tool-streaming-2025-05-14,claude-code-20250219',
      });
      assert.equal(bad.status, 400);
      const err = await bad.json();
      assert.equal(err.error.type, 'invalid_request_error');
      assert.match(err.error.message, /claude-code-20250219/);
      assert.doesNotMatch(err.error.message, /fine-grained/);
      const ok = await post('/v1/messages', body, {
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'fine-grained-tool-streaming-2025-05-14, interleaved-thinking-2025-05-14',
      });
      assert.equal(ok.status, 200);
      await assert.rejects(
        anthropic().messages.create(
          { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
          { headers: { 'anthropic-beta': 'oauth-2025-04-20' } },
        ),
        Anthropic.BadRequestError,
      );
    });

    it('refuses role system inside messages as Anthropic does without the mid-conversation beta, and that beta as Poe does', async () => {
      const body = { model: 'claude-haiku-4-5', max_tokens: 10, messages: [...user('x'), { role: 'system', content: 'be brief' }] };
      const refused = await post('/v1/messages', body, { 'anthropic-version': '2023-06-01' });
      assert.equal(refused.status, 400);
      assert.deepEqual(await refused.json(), {
        type: 'error',
        error: { type: 'invalid_request_error', message: "messages.1.role: Input should be 'user' or 'assistant'" },
      });
      const underBeta = await post('/v1/messages', body, { 'anthropic-version': '2023-06-01', 'anthropic-beta': MID_CONVERSATION_SYSTEM_BETA });
      assert.equal(underBeta.status, 400, 'the beta is not among the values Poe is known to accept');
      assert.match((await underBeta.json()).error.message, /Unexpected value\(s\) `mid-conversation-system-2026-04-07`/);
    });
  });

  describe('helpers', () => {
    it('splitWords keeps every character', () => {
      for (const s of ['', 'one', 'one two  three ', '  leading', 'a\nb\tc']) assert.equal(splitWords(s).join(''), s);
      assert.deepEqual(splitWords('Echo: one two'), ['Echo: ', 'one ', 'two']);
    });
  });
});
