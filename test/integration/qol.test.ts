/**
 * The quality-of-life layer against the fake Poe: retry ladder, transient retries, points matching,
 * footer rules, guards, rate limits, clipping and the ledger.
 */
import { strict as assert } from 'node:assert';
import OpenAI from 'openai';
import type { ChatMessage } from '../../src/core/exchange/openaiTypes';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, TEST_FAKE_MODELS, type TestProxy } from '../support/proxyHarness';
import { refusedCounts } from '../support/rawClient';

type CostUsage = OpenAI.CompletionUsage & { cost_points?: number; cost_points_estimated?: boolean };
const user = (content: string) => [{ role: 'user' as const, content }];

describe('quality-of-life layer', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });

  describe('retry ladder', () => {
    it("retries a 400 without max_tokens, logs Poe's message, and remembers the rung for the model", async () => {
      proxy = await startProxy(fake);
      fake.rejectWhen((b) => (b.max_tokens !== undefined ? 'max_tokens is not supported for this bot' : undefined));
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('hi'), max_tokens: 100 });
      assert.ok(res.choices[0].message.content?.startsWith('Echo: hi'));
      const calls = fake.chatRequests();
      assert.equal(calls.length, 2);
      assert.equal(calls[0].body.max_tokens, 100);
      assert.equal(calls[1].body.max_tokens, undefined);
      await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('again'), max_tokens: 100 });
      assert.equal(fake.chatRequests().length, 3, 'second request starts at the remembered rung');
      await proxy.server.close(100);
      const entries = await proxy.ledger.read();
      assert.equal(entries[0].retries, 1);
    });

    it('rewrites the developer role that Poe rejects', async () => {
      proxy = await startProxy(fake);
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'developer', content: 'be brief' }, ...user('q')] });
      assert.ok(res.choices[0].message.content?.startsWith('Echo: q'));
      assert.equal(fake.chatRequests().at(-1)!.body.messages[0].role, 'system');
    });

    it('lowercases the model name and finally strips optional params', async () => {
      proxy = await startProxy(fake);
      fake.rejectWhen((b) => (b.model !== 'gpt-4.1' ? 'unknown bot' : undefined));
      fake.rejectWhen((b) => (b.top_p !== undefined ? 'top_p unsupported' : undefined));
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q'), top_p: 0.5 });
      assert.ok(res.choices[0].message.content?.startsWith('Echo: q'));
      const last = fake.chatRequests().at(-1)!.body;
      assert.equal(last.model, 'gpt-4.1');
      assert.equal(last.top_p, undefined);
    });

    it("returns Poe's own message when every rung fails", async () => {
      proxy = await startProxy(fake);
      fake.rejectWhen(() => 'this bot refuses everything');
      await assert.rejects(proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q'), max_tokens: 5 }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.match(e.message, /this bot refuses everything/);
        return true;
      });
    });
  });

  describe('transient failures', () => {
    it('retries 429 honouring Retry-After, and 5xx, before the first byte', async () => {
      proxy = await startProxy(fake, { upstreamRetries: 2 });
      fake.enqueueFault({ kind: 'status', status: 429, headers: { 'retry-after': '0' } });
      fake.enqueueFault({ kind: 'status', status: 503 });
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
      assert.ok(res.choices[0].message.content?.startsWith('Echo: q'));
      assert.equal(fake.chatRequests().length, 3);
    });

    it('gives up after the bounded retries with a 502 for connection failures', async () => {
      proxy = await startProxy(fake, { upstreamRetries: 1 });
      fake.enqueueFault({ kind: 'reset-before-headers' }, { times: 2 });
      await assert.rejects(proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 502);
        assert.match(e.message, /Could not get an answer from Poe/);
        return true;
      });
    });

    it('ends a stream that breaks after the first byte with an error event, no retry', async () => {
      proxy = await startProxy(fake);
      fake.enqueueFault({ kind: 'reset-mid-stream', afterChunks: 2 });
      const stream = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('a b c d e f g'), stream: true });
      let got = '';
      await assert.rejects(
        (async () => {
          for await (const ch of stream) got += ch.choices[0]?.delta?.content ?? '';
        })(),
        /broke off|incomplete/,
      );
      assert.ok(got.length > 0, 'content before the break was delivered');
      assert.equal(fake.chatRequests().length, 1);
    });
  });

  describe('points and footer', () => {
    it('falls back to an estimate marked est. when the usage API lags', async () => {
      const lagging = await FakePoe.start({ models: TEST_FAKE_MODELS, pointsLagMs: 5_000 });
      try {
        proxy = await startProxy(lagging, { pointsWaitMs: 150 });
        const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
        assert.match(res.choices[0].message.content ?? '', /Points: [\d,]+ \(est\.\)/);
        const usage = res.usage as CostUsage;
        assert.equal(usage.cost_points_estimated, true);
        assert.equal(usage.cost_points, Math.ceil(226 + (60 * usage.total_tokens) / 1000));
      } finally {
        await proxy.close();
        await lagging.close();
      }
    });

    it('gives two concurrent requests their own points entries', async () => {
      proxy = await startProxy(fake, { pointsWaitMs: 2000 });
      fake.costPoints = ({ completionTokens }) => 1000 + completionTokens;
      const [a, b] = await Promise.all([
        proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('short') }),
        proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('a much longer question with many more words in it') }),
      ]);
      const pa = (a.usage as CostUsage).cost_points!;
      const pb = (b.usage as CostUsage).cost_points!;
      const entries = fake
        .pointsHistory()
        .map((e) => e.cost_points)
        .sort();
      assert.deepEqual([pa, pb].sort(), entries, 'each request got one distinct entry');
      assert.notEqual(pa, pb);
    });

    it('strips footers from assistant history so they never pile up', async () => {
      proxy = await startProxy(fake);
      const first = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q1') });
      const answer = first.choices[0].message.content!;
      assert.match(answer, /Tokens:/);
      await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: [...user('q1'), { role: 'assistant', content: answer }, ...user('q2')] });
      const sent = fake.chatRequests().at(-1)!.body.messages as ChatMessage[];
      assert.equal(sent[1].content, 'Echo: q1');
    });

    it('can turn the footer off', async () => {
      proxy = await startProxy(fake, { footer: false });
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
      assert.equal(res.choices[0].message.content, 'Echo: q');
      assert.ok((res.usage as CostUsage).cost_points! > 0, 'cost still in usage');
    });

    it('warns above the per-message threshold with cheaper models of the same modality', async () => {
      proxy = await startProxy(fake, { pointsPerMessageWarn: 1 });
      const res = await proxy.client().chat.completions.create({ model: 'Claude-Sonnet-4.5', messages: user('q') });
      const content = res.choices[0].message.content!;
      assert.match(content, /above your warning threshold of 1/);
      assert.match(content, /Cheaper text models: Small-Bot/);
      assert.doesNotMatch(content, /GPT-Image-1/);
    });
  });

  describe('guards', () => {
    it('pauses below the balance cutoff without calling Poe (JSON and stream)', async () => {
      fake.balance = 500;
      proxy = await startProxy(fake, { pointsCutoff: 1000 });
      const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
      assert.match(res.choices[0].message.content!, /paused.*500 points, below the cutoff of 1,000/);
      const stream = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q'), stream: true });
      let text = '';
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
      assert.match(text, /paused/);
      assert.equal(fake.chatRequests().length, 0);
      await proxy.server.close(100);
      assert.deepEqual(await proxy.ledger.read(), [], 'nothing reached Poe: no ledger lines');
      assert.deepEqual(await refusedCounts(proxy), { paused: 2 });
      fake.balance = 1_000_000;
    });

    it('refuses a request whose pre-flight estimate exceeds the hard cap', async () => {
      proxy = await startProxy(fake, { maxPointsPerMessage: 300 });
      await assert.rejects(proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q'), max_tokens: 10_000 }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal((e.error as { code?: string }).code, 'cost_limit_exceeded');
        assert.match(e.message, /Small-Bot/);
        return true;
      });
      assert.equal(fake.chatRequests().length, 0);
      const ok = await proxy.client().chat.completions.create({ model: 'Small-Bot', messages: user('q'), max_tokens: 100 });
      assert.ok(ok.choices[0].message.content);
    });

    it('rate-limits per client with 429 and Retry-After', async () => {
      proxy = await startProxy(fake, { rateLimit: { requestsPerMinute: 6, burst: 2 } });
      const c = proxy.client();
      await c.chat.completions.create({ model: 'GPT-4.1', messages: user('1') });
      await c.chat.completions.create({ model: 'GPT-4.1', messages: user('2') });
      await assert.rejects(c.chat.completions.create({ model: 'GPT-4.1', messages: user('3') }).withResponse(), (e: unknown) => {
        assert.ok(e instanceof OpenAI.RateLimitError);
        assert.ok(Number(e.headers?.get('retry-after')) >= 1);
        return true;
      });
      assert.equal(fake.chatRequests().length, 2);
    });
  });

  describe('clipping', () => {
    it('clips a 200k-token conversation to the model limit, keeping tool pairs and the last turn', async () => {
      proxy = await startProxy(fake);
      const filler = 'lorem ipsum dolor sit amet consectetur adipiscing elit '.repeat(200); // ~2k tokens
      const messages: ChatMessage[] = [{ role: 'system', content: 'You are a coding agent.' }];
      for (let i = 0; i < 100; i++) {
        messages.push({ role: 'user', content: `step ${i} ${filler}` });
        messages.push({
          role: 'assistant',
          content: null,
          tool_calls: [{ id: `call_${i}`, type: 'function', function: { name: 'read', arguments: `{"i":${i}}` } }],
        });
        messages.push({ role: 'tool', tool_call_id: `call_${i}`, content: `result ${i}` });
      }
      messages.push({ role: 'user', content: 'final question' });
      const { data, response } = await proxy
        .client()
        .chat.completions.create({ model: 'Small-Bot', messages: messages as OpenAI.ChatCompletionMessageParam[], max_tokens: 500 })
        .withResponse();
      assert.match(response.headers.get('x-poe-proxy-clipped') ?? '', /dropped=\d+/);
      assert.match(data.choices[0].message.content!, /Context clipped: \d+ older messages dropped/);
      const sent = fake.chatRequests()[0].body.messages as ChatMessage[];
      assert.equal(sent[0].role, 'system');
      assert.equal(sent.at(-1)!.content, 'final question');
      assert.ok(sent.length < messages.length);
      const calls = new Set(sent.flatMap((m) => (m.tool_calls ?? []).map((t) => t.id)));
      const results = new Set(sent.filter((m) => m.role === 'tool').map((m) => m.tool_call_id));
      assert.deepEqual([...results].sort(), [...calls].sort(), 'no orphan tool call or result');
    });
  });
});
