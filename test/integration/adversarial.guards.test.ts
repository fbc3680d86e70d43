/**
 * Adversarial review, guards that could be walked around: the per-message cap must count the worst
 * case of every output-limit field and every input Poe bills (tools, system, schemas, images).
 */
import { strict as assert } from 'node:assert';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';
import { openAiError, postChat } from '../support/rawClient';
import { startScriptedPoe } from '../support/scriptedPoe';

// GPT-4.1 in the test registry: 226 + 60 per 1k tokens. A cap of 3,000 points allows ~46k tokens.
const CAP = 3_000;
const BIG_TEXT = 'lorem ipsum dolor sit amet '.repeat(16_000); // ~80k tokens
const bigTools = [{ type: 'function', function: { name: 'f', description: BIG_TEXT, parameters: { type: 'object', properties: {} } } }];
const IMAGE = 'data:image/png;base64,iVBORw0KGgo=';

interface Case {
  name: string;
  path: string;
  body: Record<string, unknown>;
}

const chat = (extra: Record<string, unknown>, content: unknown = 'hi'): Record<string, unknown> => ({
  model: 'GPT-4.1',
  messages: [{ role: 'user', content }],
  max_tokens: 1,
  ...extra,
});
const responses = (extra: Record<string, unknown>, input: unknown = 'hi'): Record<string, unknown> => ({
  model: 'GPT-4.1',
  input,
  max_output_tokens: 1,
  ...extra,
});
const messages = (extra: Record<string, unknown>, content: unknown = 'hi'): Record<string, unknown> => ({
  model: 'Claude-Sonnet-4.5',
  messages: [{ role: 'user', content }],
  max_tokens: 1,
  ...extra,
});

const WALKAROUNDS: Case[] = [
  { name: 'chat: max_tokens 1 with max_completion_tokens 100000', path: '/v1/chat/completions', body: chat({ max_completion_tokens: 100_000 }) },
  { name: 'chat: ~80k tokens of tool definitions', path: '/v1/chat/completions', body: chat({ tools: bigTools }) },
  {
    name: 'chat: ~80k tokens of response_format schema',
    path: '/v1/chat/completions',
    body: chat({ response_format: { type: 'json_schema', json_schema: { name: 's', description: BIG_TEXT } } }),
  },
  {
    name: 'chat: 40 images',
    path: '/v1/chat/completions',
    body: chat(
      {},
      Array.from({ length: 40 }, () => ({ type: 'image_url', image_url: { url: IMAGE } })),
    ),
  },
  { name: 'responses: max_output_tokens 1 with max_tokens 100000', path: '/v1/responses', body: responses({ max_tokens: 100_000 }) },
  {
    name: 'responses: 40 input images',
    path: '/v1/responses',
    body: responses({}, [{ role: 'user', content: Array.from({ length: 40 }, () => ({ type: 'input_image', image_url: IMAGE })) }]),
  },
  {
    name: 'messages: 40 images',
    path: '/v1/messages',
    body: messages(
      {},
      Array.from({ length: 40 }, () => ({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } })),
    ),
  },
];

/** Walk-arounds that the cap already caught before the review (kept as regressions). */
const HELD: Case[] = [
  {
    name: 'responses: ~80k tokens of tools',
    path: '/v1/responses',
    body: responses({ tools: [{ type: 'function', name: 'f', description: BIG_TEXT, parameters: {} }] }),
  },
  { name: 'chat: max_completion_tokens 1 with max_tokens 100000', path: '/v1/chat/completions', body: chat({ max_tokens: 100_000, max_completion_tokens: 1 }) },
  { name: 'chat: max_tokens 100000', path: '/v1/chat/completions', body: chat({ max_tokens: 100_000 }) },
  { name: 'chat: ~80k tokens of conversation', path: '/v1/chat/completions', body: chat({}, BIG_TEXT) },
  { name: 'messages: ~80k tokens of system prompt', path: '/v1/messages', body: messages({ system: BIG_TEXT }) },
  {
    name: 'messages: ~80k tokens of tools',
    path: '/v1/messages',
    body: messages({ tools: [{ name: 'f', description: BIG_TEXT, input_schema: { type: 'object' } }] }),
  },
  { name: 'responses: ~80k tokens of instructions', path: '/v1/responses', body: responses({ instructions: BIG_TEXT }) },
];

describe('adversarial: the per-message cap counts the worst case (item 3)', function () {
  this.timeout(60_000);
  let fake: FakePoe;
  let proxy: TestProxy | undefined;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });
  /** Requests that would cost points (the Usage API's are free). */
  const generations = (): number => fake.requests.filter((r) => r.path.startsWith('/v1/')).length;
  beforeEach(async () => {
    proxy = await startProxy(fake, { maxPointsPerMessage: CAP });
  });

  for (const c of [...WALKAROUNDS, ...HELD]) {
    it(`refuses ${c.name}${HELD.includes(c) ? ' (held)' : ''}, and nothing reaches Poe`, async () => {
      const before = generations();
      const r = await postChat(proxy!.url, c.body, { path: c.path });
      assert.equal(r.status, 400, r.body.slice(0, 300));
      const message = c.path === '/v1/messages' ? JSON.parse(r.body).error.message : openAiError(r.body)!.message;
      assert.match(message, /per-message cap/);
      assert.equal(generations(), before);
    });
  }

  it('lets small requests through, with both limit fields small and a few images', async () => {
    for (const c of [
      {
        path: '/v1/chat/completions',
        body: chat({ max_completion_tokens: 100 }, [
          { type: 'text', text: 'hi' },
          { type: 'image_url', image_url: { url: IMAGE } },
        ]),
      },
      { path: '/v1/responses', body: responses({ max_output_tokens: 100 }) },
      { path: '/v1/messages', body: messages({ max_tokens: 100 }) },
    ]) {
      const r = await postChat(proxy!.url, c.body, { path: c.path });
      assert.equal(r.status, 200, `${c.path}: ${r.body.slice(0, 300)}`);
    }
  });

  it('the 400 ladder does not drop max_tokens when that would lift the request over the cap (beyond the list)', async () => {
    // Poe refuses any request carrying max_tokens: the ladder's "drop max_tokens" rung would send it
    // unlimited, and GPT-4.1's worst case without a limit (4,096 reserved tokens: ~472 points) is over a cap of 400.
    const seen: Array<Record<string, unknown>> = [];
    const poe = await startScriptedPoe((_req, res, body) => {
      const b = JSON.parse(body);
      seen.push(b);
      if (b.max_tokens !== undefined || b.max_completion_tokens !== undefined) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'max_tokens not supported' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'c',
          object: 'chat.completion',
          created: 1,
          model: 'GPT-4.1',
          choices: [{ index: 0, message: { role: 'assistant', content: 'unlimited' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    });
    try {
      await proxy!.close();
      proxy = await startProxy({ url: poe.url } as FakePoe, { maxPointsPerMessage: 400, upstreamRetries: 0 });
      for (let i = 0; i < 2; i++) {
        const r = await postChat(proxy.url, chat({ max_tokens: 100 }));
        assert.equal(r.status, 400, r.body.slice(0, 300));
        assert.match(openAiError(r.body)!.message, /max_tokens not supported/);
      }
      assert.ok(seen.length > 0);
      for (const b of seen) assert.equal(b.max_tokens, 100, 'every request Poe saw was limited');
    } finally {
      await poe.close();
    }
  });
});
