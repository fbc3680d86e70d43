/**
 * Models as clients name them (issue #10): Anthropic's own ids reach the registry's Claude entries on
 * every endpoint and are listed in GET /v1/models; and the model is resolved before the body is
 * validated, so an unknown model is always the 404 that names it, never some 400 about the body.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { FakePoe } from '../support/fake/server';
import { postChat, rawRequest } from '../support/rawClient';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

const BUNDLED_YAML = readFileSync(path.resolve(__dirname, '../../../models.yaml'), 'utf8');

describe('model resolution', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });
  beforeEach(async () => {
    proxy = await startProxy(fake, {}, { yaml: BUNDLED_YAML });
  });

  it("answers Claude Code's default ids (undated, dated, newer than the registry) on /v1/messages with the registry's Claude entries", async () => {
    const anthropic = new Anthropic({ baseURL: proxy.url, apiKey: 'x', maxRetries: 0 });
    const cases: Array<[string, string]> = [
      ['claude-opus-4-5', 'Claude-Opus-4.5'],
      ['claude-opus-4-5-20251101', 'Claude-Opus-4.5'],
      ['claude-opus-4-8', 'Claude-Opus-4.7'],
      ['claude-sonnet-4-5-20250929', 'Claude-Sonnet-4.5'],
      ['claude-sonnet-4-6', 'Claude-Sonnet-4.6'],
      ['claude-haiku-4-5-20251001', 'Claude-Haiku-4.5'],
      ['claude-3-5-haiku-20241022', 'Claude-Haiku-4.5'],
    ];
    for (const [asked, expected] of cases) {
      const msg = await anthropic.messages.create({ model: asked, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(msg.type, 'message', asked);
      assert.equal(fake.requests.filter((r) => r.path === '/v1/messages').at(-1)?.body.model, expected, `${asked} → ${expected}`);
    }
    const chat = await postChat(proxy.url, { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(chat.status, 200, 'chat completions resolve them too');
    assert.equal(fake.chatRequests().at(-1)?.body.model, 'Claude-Sonnet-4.6');
  });

  it('lists the ids that reach each model in GET /v1/models: aliases, and the family the newest Claude serves', async () => {
    const list = JSON.parse((await rawRequest(proxy.url, { path: '/v1/models' })).body) as {
      data: Array<{ id: string; aliases: string[]; vendor_family?: string }>;
    };
    const byId = new Map(list.data.map((m) => [m.id, m]));
    assert.deepEqual(byId.get('Claude-Sonnet-4.5')?.aliases, ['claude-sonnet-4-5', 'claude-sonnet-4-5-20250929']);
    assert.deepEqual(byId.get('Claude-Opus-4.7')?.aliases, ['claude-opus-4-7']);
    assert.equal(byId.get('Claude-Opus-4.7')?.vendor_family, 'claude-opus-*');
    assert.equal(byId.get('Claude-Opus-4.5')?.vendor_family, undefined);
    assert.equal(byId.get('Claude-Haiku-4.5')?.vendor_family, 'claude-haiku-*');
    assert.deepEqual(byId.get('GPT-4.1')?.aliases, ['gpt-4.1-2025-04-14']);
    for (const m of list.data) assert.ok(Array.isArray(m.aliases), m.id);
  });

  it('answers an unknown model with the 404 that names it on every endpoint, even when the rest of the body is wrong too', async () => {
    const model = 'claude-mystery-9';
    const cases: Array<[string, Record<string, unknown>, Record<string, string>]> = [
      ['/v1/chat/completions', { model, messages: 'not a list' }, {}],
      [
        '/v1/messages',
        {
          model,
          messages: [
            { role: 'system', content: 'x' },
            { role: 'tool', content: 1 },
          ],
        },
        { 'anthropic-version': '2023-06-01' },
      ],
      ['/v1/responses', { model, input: 42 }, {}],
      ['/v1/messages/count_tokens', { model }, { 'anthropic-version': '2023-06-01' }],
    ];
    for (const [route, body, headers] of cases) {
      const r = await postChat(proxy.url, body, { path: route, headers });
      assert.equal(r.status, 404, `${route}: ${r.body}`);
      assert.equal(r.headers['x-should-retry'], 'false');
      const message = String(JSON.parse(r.body).error.message);
      assert.match(message, /Model "claude-mystery-9" is not in the proxy's model registry/, route);
      assert.match(message, /GET \/v1\/models/, `${route}: says where the ids are`);
      assert.match(message, /ANTHROPIC_MODEL.*Configure Claude Code/, `${route}: a Claude id gets the Claude Code hint`);
    }
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, 0, 'nothing reached Poe');
  });
});
