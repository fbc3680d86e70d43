/**
 * Where the footer goes and where it never does (issue #10): structured output (JSON mode), several
 * choices, media answers, a per-request opt-out header, Copilot Chat's tool-using requests; and the
 * cost reported out of band in `usage.cost_points` and response headers.
 */
import { strict as assert } from 'node:assert';
import { FOOTER_MARK } from '../../src/core/exchange/footer';
import { runChatInProcess } from '../../src/core/exchange/inProcess';
import type { ChatChunk } from '../../src/core/exchange/openaiTypes';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';

const user = (content: string) => [{ role: 'user' as const, content }];
const JSON_ANSWER = '{"city":"Paris","population":2100000}';

describe('footer rules', function () {
  let fake: FakePoe;
  let proxy: TestProxy;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy, setProxy: (p) => (proxy = p) });

  it('never appends the footer to a json_object answer: the content parses as JSON', async () => {
    fake.reply = () => ({ content: JSON_ANSWER });
    const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('city?'), response_format: { type: 'json_object' } });
    assert.deepEqual(JSON.parse(res.choices[0].message.content!), { city: 'Paris', population: 2100000 });
  });

  it('never appends the footer to a streamed json_schema answer', async () => {
    fake.reply = () => ({ content: JSON_ANSWER });
    const stream = await proxy.client().chat.completions.create({
      model: 'GPT-4.1',
      messages: user('city?'),
      stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'city', schema: { type: 'object', properties: { city: { type: 'string' } } } } },
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.deepEqual(JSON.parse(text), { city: 'Paris', population: 2100000 });
  });

  it('never appends the footer when the client asks for several choices (n > 1)', async () => {
    const res = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q'), n: 2 });
    assert.equal(res.choices[0].message.content, 'Echo: q');
  });

  it('never appends the footer to a media answer', async () => {
    fake.reply = () => ({ content: 'https://poe.example/image.png' });
    const res = await proxy.client().chat.completions.create({ model: 'GPT-Image-1', messages: user('a cat') });
    assert.equal(res.choices[0].message.content, 'https://poe.example/image.png');
  });

  it('turns the footer off for one request with x-poe-proxy-footer: off, and keeps it for the next', async () => {
    const off = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') }, { headers: { 'x-poe-proxy-footer': 'off' } });
    assert.equal(off.choices[0].message.content, 'Echo: q');
    const stream = await proxy
      .client()
      .chat.completions.create({ model: 'GPT-4.1', messages: user('q'), stream: true }, { headers: { 'x-poe-proxy-footer': 'off' } });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Echo: q');
    const on = await proxy.client().chat.completions.create({ model: 'GPT-4.1', messages: user('q') });
    assert.ok(on.choices[0].message.content!.includes(FOOTER_MARK));
  });

  it('reports the cost out of band: usage.cost_points and x-poe-points / x-poe-points-estimated / x-poe-balance headers', async () => {
    await proxy.close();
    proxy = await startProxy(fake, { pointsCutoff: 1 }); // the pause check fetches the balance first
    const before = fake.balance;
    const { data, response } = await proxy
      .client()
      .chat.completions.create(
        { model: 'GPT-4.1', messages: user('city?'), response_format: { type: 'json_object' } },
        { headers: { 'x-poe-proxy-footer': 'off' } },
      )
      .withResponse();
    const usage = data.usage as { cost_points?: number; cost_points_estimated?: boolean };
    assert.ok(typeof usage.cost_points === 'number' && usage.cost_points > 0);
    assert.equal(response.headers.get('x-poe-points'), String(usage.cost_points));
    assert.equal(response.headers.get('x-poe-points-estimated'), String(usage.cost_points_estimated));
    // No footer, so nothing waits for points_history: the estimate, marked (the reconciler books Poe's figure later).
    assert.equal(usage.cost_points_estimated, true);
    assert.equal(response.headers.get('x-poe-balance'), String(before - usage.cost_points), 'the last known balance less this answer');
  });

  it('gives Copilot Chat (in process) no footer on a request that offers tools, even with the footer asked for', async () => {
    const chunks: ChatChunk[] = [];
    const tools = [{ type: 'function' as const, function: { name: 'read_file', parameters: { type: 'object', properties: {} } } }];
    await runChatInProcess(
      proxy.engine.inProcessServices(),
      { model: 'GPT-4.1', messages: user('x'), tools },
      { onChunk: (c) => chunks.push(c), footer: true },
    );
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'Echo: x');
  });
});
