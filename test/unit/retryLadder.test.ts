import { strict as assert } from 'node:assert';
import { applyRungs, LadderMemory, RUNGS } from '../../src/core/poe/retryLadder';
import type { ChatRequest } from '../../src/core/exchange/openaiTypes';

const req: ChatRequest = {
  model: 'GPT-5',
  max_tokens: 100,
  top_p: 0.5,
  stream_options: { include_usage: true },
  messages: [
    { role: 'developer', content: 'be brief' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ],
    },
    { role: 'assistant', content: '' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'look' },
        { type: 'image_url', image_url: { url: 'data:x' } },
      ],
    },
  ],
};

describe('retry ladder', () => {
  it('rung 1 rewrites developer→system, drops empty messages, flattens text-only parts, keeps images', () => {
    const out = RUNGS[0].apply(req)!;
    assert.equal(out.messages[0].role, 'system');
    assert.equal(out.messages[1].content, 'a\nb');
    assert.equal(out.messages.length, 3);
    assert.ok(Array.isArray(out.messages[2].content));
    assert.equal(req.messages[0].role, 'developer', 'input not mutated');
  });

  it('rung 2 drops max_tokens, rung 3 lowercases the model, rung 4 strips optional params', () => {
    assert.equal(RUNGS[1].apply(req)!.max_tokens, undefined);
    assert.equal(RUNGS[2].apply(req)!.model, 'gpt-5');
    const stripped = RUNGS[3].apply(req)!;
    assert.equal(stripped.top_p, undefined);
    assert.equal(stripped.stream_options, undefined);
    assert.equal(stripped.max_tokens, 100);
  });

  it('rungs that change nothing return undefined', () => {
    const plain: ChatRequest = { model: 'x', messages: [{ role: 'user', content: 'hi' }] };
    for (const r of RUNGS) assert.equal(r.apply(plain), undefined, r.name);
  });

  it('applyRungs is cumulative and memory remembers the highest rung per model', () => {
    const all = applyRungs(req, 4);
    assert.equal(all.model, 'gpt-5');
    assert.equal(all.max_tokens, undefined);
    assert.equal(all.messages[0].role, 'system');
    const mem = new LadderMemory(2);
    mem.remember('a', 2);
    mem.remember('a', 1);
    assert.equal(mem.startRung('a'), 2);
    mem.remember('b', 1);
    mem.remember('c', 1);
    assert.equal(mem.startRung('a'), 0, 'oldest evicted beyond the bound');
  });
});
