import { strict as assert } from 'node:assert';
import {
  clipMarker,
  clipMessages,
  dropOrder,
  MESSAGE_OVERHEAD_TOKENS,
  NON_TEXT_PART_TOKENS,
  REPLY_PRIMING_TOKENS,
  type ClipResult,
} from '../../src/core/exchange/clip';
import type { ChatMessage, ContentPart } from '../../src/core/exchange/openaiTypes';
import { createTokenCounter, utf8Length, type EncodingName, type ManagedTokenCounter, type TokenCounter } from '../../src/core/tokens';

/** Deterministic stand-in: one token per 4 characters (never more than the byte length). */
class FakeCounter implements TokenCounter {
  calls: string[][] = [];
  async count(texts: readonly string[]): Promise<number[]> {
    this.calls.push([...texts]);
    return texts.map(fakeTokens);
  }
  async countOne(text: string): Promise<number> {
    return (await this.count([text]))[0];
  }
  warm(): void {}
  async dispose(): Promise<void> {}
}
const fakeTokens = (t: string): number => Math.ceil(t.length / 4);

/** Tokens of a conversation under the clip rules, with the fake counter. */
function fakeTotal(messages: ChatMessage[]): number {
  let total = REPLY_PRIMING_TOKENS;
  for (const m of messages) {
    total += MESSAGE_OVERHEAD_TOKENS;
    if (m.name) total += 1 + fakeTokens(m.name);
    if (m.tool_calls?.length) total += fakeTokens(JSON.stringify(m.tool_calls));
    if (m.tool_call_id) total += fakeTokens(m.tool_call_id);
    if (typeof m.content === 'string') total += fakeTokens(m.content);
    else if (Array.isArray(m.content)) {
      for (const p of m.content) total += p.type === 'text' ? fakeTokens((p as { text: string }).text) : NON_TEXT_PART_TOKENS;
    }
  }
  return total;
}

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const WORDS = 'the model reads a file then writes code and tests it while the proxy counts every token of context sent to poe'.split(' ');
function words(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += (i ? (r() < 0.08 ? '.\n' : ' ') : '') + WORDS[Math.floor(r() * WORDS.length)];
  return s;
}
function codeBlock(r: () => number, lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const v = `${WORDS[Math.floor(r() * WORDS.length)]}${Math.floor(r() * 1000)}`;
    out.push(`${'  '.repeat(1 + Math.floor(r() * 3))}const ${v} = await load("${v}.json", { retries: ${Math.floor(r() * 9)} }); // ${words(r, 5)}`);
  }
  return out.join('\n');
}

/** A coding-agent conversation: system, then turns of user → (assistant tool_calls → tool results)* → answer. */
function agentConversation(opts: { seed: number; turns: number; stepChars: number }): ChatMessage[] {
  const r = seeded(opts.seed);
  const messages: ChatMessage[] = [{ role: 'system', content: `You are helpful. ${words(r, 200)}` }];
  let call = 0;
  for (let t = 0; t < opts.turns; t++) {
    messages.push({ role: 'user', content: words(r, 20 + Math.floor(r() * 80)) });
    const steps = Math.floor(r() * 4);
    for (let s = 0; s < steps; s++) {
      const n = 1 + Math.floor(r() * 3);
      const ids = Array.from({ length: n }, () => `call_${call++}`);
      messages.push({
        role: 'assistant',
        content: r() < 0.3 ? words(r, 10) : null,
        tool_calls: ids.map((id) => ({ id, type: 'function' as const, function: { name: 'read_file', arguments: JSON.stringify({ path: `src/${id}.ts` }) } })),
      });
      for (const id of ids)
        messages.push({ role: 'tool', tool_call_id: id, content: codeBlock(r, Math.max(1, Math.floor((opts.stepChars * (0.5 + r())) / 90))) });
    }
    messages.push({ role: 'assistant', content: words(r, 30 + Math.floor(r() * 150)) });
    if (r() < 0.1) messages.push({ role: 'developer', content: 'Keep answers short.' });
  }
  messages.push({ role: 'user', content: 'Next: summarise the changes.' });
  return messages;
}

/** No tool message without its call before it; no call without its answer. */
function assertToolPairsIntact(out: ChatMessage[], input: ChatMessage[]): void {
  const answeredInInput = new Set(input.filter((m) => m.role === 'tool').map((m) => m.tool_call_id));
  const offered = new Map<string, number>();
  out.forEach((m, i) => {
    if (m.role === 'assistant' && m.tool_calls) for (const tc of m.tool_calls) offered.set(tc.id, i);
    if (m.role === 'tool') {
      const at = offered.get(m.tool_call_id!);
      assert.ok(at !== undefined && at < i, `orphan tool result ${m.tool_call_id}`);
    }
  });
  const answered = new Set(out.filter((m) => m.role === 'tool').map((m) => m.tool_call_id));
  for (const id of offered.keys()) {
    if (answeredInInput.has(id)) assert.ok(answered.has(id), `tool call ${id} kept without its result`);
  }
}

/** Output messages are the input's, in order (truncated ones as copies). */
function assertSubsequence(out: ChatMessage[], input: ChatMessage[], truncated: number): void {
  const position = new Map(input.map((m, i) => [m, i]));
  let j = 0;
  let copies = 0;
  for (const m of out) {
    let at = position.get(m);
    if (at === undefined) {
      copies++;
      at = input.findIndex((x, i) => i >= j && copyOf(x, m));
    }
    assert.ok(at !== undefined && at >= j, 'output message not found in input order');
    j = at + 1;
  }
  assert.equal(copies, truncated);
}
function copyOf(a: ChatMessage, b: ChatMessage): boolean {
  return a !== b && JSON.stringify({ ...a, content: undefined }) === JSON.stringify({ ...b, content: undefined });
}

async function clipChecked(messages: ChatMessage[], limit: number, counter: TokenCounter, encoding: EncodingName = 'o200k_base'): Promise<ClipResult> {
  const snapshot = structuredClone(messages);
  const refs = [...messages];
  const r = await clipMessages(messages, { limit, encoding }, counter);
  assert.deepEqual(messages, snapshot, 'input not mutated');
  assert.ok(
    refs.every((m, i) => messages[i] === m),
    'input array not reordered',
  );
  assert.notEqual(r.messages, messages, 'a new array');
  assert.equal(r.limit, limit);
  assert.equal(r.droppedMessages, messages.length - r.messages.length);
  assert.equal(r.clipped, r.droppedMessages > 0 || r.truncatedMessages > 0);
  assertToolPairsIntact(r.messages, messages);
  assertSubsequence(r.messages, messages, r.truncatedMessages);
  // system/developer messages and the latest user turn survive
  for (const m of messages)
    if (m.role === 'system' || m.role === 'developer')
      assert.ok(
        r.messages.some((o) => o === m || copyOf(m, o)),
        'system kept',
      );
  return r;
}

const text = (n: number, ch = 'x'): string => `${ch} `.repeat(Math.ceil(n / 2)).slice(0, n);

describe('clip', function () {
  this.timeout(60_000);

  it('does not count at all when the UTF-8 bytes already fit', async () => {
    const c = new FakeCounter();
    const msgs: ChatMessage[] = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello 👋' },
    ];
    const r = await clipChecked(msgs, 1000, c);
    assert.equal(c.calls.length, 0);
    assert.equal(r.clipped, false);
    assert.equal(r.counted, false);
    assert.deepEqual(r.messages, msgs);
    assert.ok(r.tokens > 0 && r.tokens <= 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMING_TOKENS + utf8Length('be brief') + utf8Length('hello 👋'));
  });

  it('counts when the bytes exceed the limit but the tokens fit, and reports the count', async () => {
    const c = new FakeCounter();
    const msgs: ChatMessage[] = [
      { role: 'system', content: text(400) },
      { role: 'user', content: text(400), name: 'alice' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
      {
        role: 'tool',
        tool_call_id: 'c1',
        content: [
          { type: 'text', text: text(100) },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        ],
      },
    ];
    const limit = fakeTotal(msgs) + 1;
    const r = await clipChecked(msgs, limit, c);
    assert.equal(c.calls.length, 1);
    assert.equal(r.counted, true);
    assert.equal(r.clipped, false);
    assert.equal(r.tokens, fakeTotal(msgs));
    assert.deepEqual(r.messages, msgs);
  });

  it('keeps system/developer messages and the latest user turn, dropping the oldest turns first', async () => {
    const c = new FakeCounter();
    const msgs: ChatMessage[] = [
      { role: 'system', content: text(200, 's') },
      { role: 'user', content: text(400, 'a') },
      { role: 'assistant', content: text(400, 'b') },
      { role: 'user', content: text(400, 'c') },
      { role: 'assistant', content: text(400, 'd') },
      { role: 'developer', content: text(200, 'e') },
      { role: 'user', content: text(400, 'f') },
      { role: 'assistant', content: text(400, 'g') },
      { role: 'user', content: text(400, 'h') },
      { role: 'assistant', content: text(100, 'i') },
    ];
    // Room for everything but about one message: the whole first turn goes (a question never loses its only answer alone).
    const r1 = await clipChecked(msgs, fakeTotal(msgs) - 50, c);
    assert.deepEqual(r1.messages, [msgs[0], ...msgs.slice(3)]);
    assert.equal(r1.droppedMessages, 2);
    assert.ok(r1.tokens <= r1.limit);
    assert.equal(r1.tokens, fakeTotal(r1.messages));
    // Tight: only system, developer and the last turn fit.
    const keep = [msgs[0], msgs[5], msgs[8], msgs[9]];
    const r2 = await clipChecked(msgs, fakeTotal(keep), c);
    assert.deepEqual(r2.messages, keep);
    assert.equal(r2.droppedMessages, 6);
    assert.equal(r2.truncatedMessages, 0);
    assert.equal(r2.tokens, fakeTotal(keep));
  });

  it('drops an assistant tool_calls message and its tool results together, never leaving orphans', async () => {
    const c = new FakeCounter();
    const call = (id: string) => ({ id, type: 'function' as const, function: { name: 'read', arguments: `{"p":"${id}"}` } });
    const msgs: ChatMessage[] = [
      { role: 'system', content: 'sys' },
      { role: 'user', content: text(200, 'q') },
      { role: 'assistant', content: null, tool_calls: [call('c1'), call('c2')] },
      { role: 'tool', tool_call_id: 'c1', content: text(800, 'r') },
      { role: 'tool', tool_call_id: 'c2', content: text(800, 's') },
      { role: 'assistant', content: 'reading one more', tool_calls: [call('c3')] },
      { role: 'tool', tool_call_id: 'c3', content: text(800, 't') },
      { role: 'assistant', content: text(200, 'answer') },
      { role: 'user', content: 'next question' },
    ];
    // Just over by a little: the first step (assistant + both results) goes as one unit.
    const r1 = await clipChecked(msgs, fakeTotal(msgs) - 10, c);
    assert.deepEqual(r1.messages, [msgs[0], msgs[1], msgs[5], msgs[6], msgs[7], msgs[8]]);
    assert.equal(r1.droppedMessages, 3);
    // More: the second step goes too; the question keeps its answer.
    const r2 = await clipChecked(msgs, fakeTotal([msgs[0], msgs[1], msgs[7], msgs[8]]), c);
    assert.deepEqual(r2.messages, [msgs[0], msgs[1], msgs[7], msgs[8]]);
    // Even more: the whole turn.
    const r3 = await clipChecked(msgs, fakeTotal([msgs[0], msgs[8]]) + 5, c);
    assert.deepEqual(r3.messages, [msgs[0], msgs[8]]);
    // A tool result inside the kept latest turn keeps its call even if the call is older than the turn.
    const odd: ChatMessage[] = [
      { role: 'system', content: 'sys' },
      { role: 'user', content: text(400) },
      { role: 'assistant', content: null, tool_calls: [call('z1')] },
      { role: 'user', content: 'interrupting' },
      { role: 'tool', tool_call_id: 'z1', content: text(400) },
    ];
    const r4 = await clipChecked(odd, fakeTotal([odd[0], odd[2], odd[3], odd[4]]), c);
    assert.deepEqual(r4.messages, [odd[0], odd[2], odd[3], odd[4]]);
  });

  it('handles orphans already in the input, legacy function calls and conversations without a user message', async () => {
    const c = new FakeCounter();
    const msgs: ChatMessage[] = [
      { role: 'system', content: 'sys' },
      { role: 'tool', tool_call_id: 'unknown', content: text(400) },
      { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } },
      { role: 'function', name: 'f', content: text(400) },
      { role: 'user', content: text(400) },
    ];
    const r = await clipChecked(msgs, fakeTotal([msgs[0], msgs[4]]), c);
    assert.deepEqual(r.messages, [msgs[0], msgs[4]]);
    assert.deepEqual(dropOrder(msgs), [[1], [2, 3]]);

    const noUser: ChatMessage[] = [
      { role: 'system', content: 'sys' },
      { role: 'assistant', content: text(400) },
      { role: 'assistant', content: text(400) },
    ];
    const r2 = await clipChecked(noUser, fakeTotal([noUser[0], noUser[2]]), c);
    assert.deepEqual(r2.messages, [noUser[0], noUser[2]]);
  });

  it('cuts the middle of the largest kept message with a visible marker when dropping is not enough', async () => {
    const c = new FakeCounter();
    const big = Array.from({ length: 2000 }, (_, i) => `line ${i}: ${'lorem ipsum '.repeat(3)}`).join('\n');
    const msgs: ChatMessage[] = [
      { role: 'system', content: text(400, 's') },
      { role: 'user', content: text(400, 'old') },
      { role: 'assistant', content: text(400, 'old answer') },
      { role: 'user', content: big },
    ];
    const limit = 2000;
    const r = await clipChecked(msgs, limit, c);
    assert.equal(r.droppedMessages, 2);
    assert.equal(r.truncatedMessages, 1);
    assert.equal(r.clipped, true);
    assert.ok(r.tokens <= limit, `${r.tokens} <= ${limit}`);
    assert.ok(r.tokens > limit * 0.9, 'uses the room it has');
    assert.equal(r.messages[0], msgs[0]);
    const cut = r.messages[1].content as string;
    const m = /\n\n\[… (\d+) tokens clipped by poe-proxy …\]\n\n/.exec(cut);
    assert.ok(m, 'marker present');
    const [head, tail] = cut.split(m[0]);
    assert.ok(big.startsWith(head) && head.length > 1000, 'head kept');
    assert.ok(big.endsWith(tail) && tail.length > 1000, 'tail kept');
    assert.ok(head.endsWith('\n') && tail.startsWith('line '), 'cut on line boundaries');
    assert.equal(Number(m[1]), fakeTokens(big) - fakeTokens(head) - fakeTokens(tail));
    assert.ok(Math.abs(fakeTotal(r.messages) - r.tokens) <= 3, 'reported tokens match the output');
    assert.equal(msgs[3].content, big, 'original untouched');
  });

  it('cuts text parts and keeps image parts of content arrays', async () => {
    const c = new FakeCounter();
    const image: ContentPart = { type: 'image_url', image_url: { url: 'data:image/png;base64,' + 'A'.repeat(5000) } };
    const small = { type: 'text' as const, text: 'caption' };
    const msgs: ChatMessage[] = [
      { role: 'system', content: 'sys' },
      { role: 'user', content: [{ type: 'text', text: text(20_000, 'w') }, image, small] },
    ];
    const limit = NON_TEXT_PART_TOKENS + 800;
    const r = await clipChecked(msgs, limit, c);
    assert.equal(r.truncatedMessages, 1);
    const parts = r.messages[1].content as ContentPart[];
    assert.equal(parts.length, 3);
    assert.equal(parts[1], image);
    assert.equal(parts[2], small);
    assert.match((parts[0] as { text: string }).text, /tokens clipped by poe-proxy/);
    assert.ok(r.tokens <= limit);
    assert.equal(((msgs[1].content as ContentPart[])[0] as { text: string }).text.length, 20_000);
  });

  it('cuts several messages when one is not enough, and reports when nothing more can be cut', async () => {
    const c = new FakeCounter();
    const msgs: ChatMessage[] = [
      { role: 'system', content: text(8000, 's') },
      { role: 'user', content: text(8000, 'u') },
    ];
    const r = await clipChecked(msgs, 1200, c);
    assert.equal(r.truncatedMessages, 2);
    assert.ok(r.tokens <= 1200);
    const impossible = await clipChecked(msgs, 50, c);
    assert.equal(impossible.clipped, true);
    assert.ok(impossible.tokens > 50, 'over the limit, and says so');
  });

  it('leaves the input alone when the limit is not positive', async () => {
    const c = new FakeCounter();
    const msgs: ChatMessage[] = [{ role: 'user', content: text(1000) }];
    const r = await clipChecked(msgs, 0, c);
    assert.equal(r.clipped, false);
    assert.deepEqual(r.messages, msgs);
  });

  it('random agent conversations: invariants hold for any limit', async () => {
    const c = new FakeCounter();
    for (let seed = 1; seed <= 60; seed++) {
      const msgs = agentConversation({ seed, turns: 3 + (seed % 7), stepChars: 600 });
      const total = fakeTotal(msgs);
      const r = seeded(seed * 31);
      const limit = Math.max(200, Math.floor(total * (0.05 + r() * 1.0)));
      const res = await clipChecked(msgs, limit, c);
      const lastUser = msgs.map((m) => m.role).lastIndexOf('user');
      const tail = msgs.slice(lastUser);
      assert.deepEqual(
        res.messages.slice(-tail.length).map((m) => m.role),
        tail.map((m) => m.role),
        `seed ${seed}: latest turn kept`,
      );
      const pinned = msgs.filter((m, i) => i >= lastUser || m.role === 'system' || m.role === 'developer').length;
      if (res.tokens > limit) assert.equal(res.messages.length, pinned, `seed ${seed}: over the limit only when nothing droppable is left`);
      if (res.tokens <= limit) assert.ok(Math.abs(fakeTotal(res.messages) - res.tokens) <= 3 * res.truncatedMessages, `seed ${seed}: tokens reported`);
    }
  });

  describe('with the real counter', () => {
    let counter: ManagedTokenCounter;
    before(() => {
      counter = createTokenCounter({ timeoutMs: 30_000 });
    });
    after(() => counter.dispose());

    it('clips a 200k-token agent conversation, then the next turn only counts the new messages', async () => {
      const msgs = agentConversation({ seed: 42, turns: 120, stepChars: 2400 });
      const bytes = msgs.reduce((s, m) => s + utf8Length(typeof m.content === 'string' ? m.content : ''), 0);
      assert.ok(bytes > 700_000, `conversation is ~200k tokens (${bytes} bytes)`);
      const limit = 100_000;
      const first = await clipChecked(msgs, limit, counter);
      assert.equal(first.counted, true);
      assert.ok(first.clipped && first.droppedMessages > 0);
      assert.ok(first.tokens <= limit && first.tokens > limit * 0.95, `${first.tokens}`);
      assert.equal(first.messages[0], msgs[0]);
      assert.equal(first.messages.at(-1), msgs.at(-1));
      assert.ok(
        first.messages.some((m) => m.role === 'tool'),
        'tool pairs remain',
      );
      assert.equal(counter.stats().estimatedTexts, 0, 'exact counts');

      const sent = counter.stats().textsSent;
      const next = [...msgs, { role: 'assistant', content: 'Here is the summary of everything.' }, { role: 'user', content: 'Thanks, now the tests.' }];
      const second = await clipChecked(next, limit, counter);
      assert.equal(counter.stats().textsSent - sent, 2, 'only the two new messages were sent to the worker');
      assert.ok(second.tokens <= limit);
      assert.ok(second.droppedMessages >= first.droppedMessages);
      assert.equal(second.messages.at(-1), next.at(-1));
    });

    it('a truncated message is counted with the real tokenizer and fits', async () => {
      const big = Array.from({ length: 6000 }, (_, i) => `row ${i}, value ${(i * 7919) % 1000}, label "${WORDS[i % WORDS.length]}"`).join('\n');
      const msgs: ChatMessage[] = [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: big },
      ];
      const r = await clipChecked(msgs, 5000, counter);
      assert.equal(r.truncatedMessages, 1);
      assert.ok(r.tokens <= 5000 && r.tokens > 4500, `${r.tokens}`);
      const [sys, exact] = await counter.count(['You are terse.', r.messages[1].content as string]);
      const recount = sys + exact + 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMING_TOKENS;
      assert.ok(Math.abs(recount - r.tokens) <= 3, `reported ${r.tokens}, recount ${recount}`);
      assert.ok((r.messages[1].content as string).includes(clipMarker(Number(/\[… (\d+) tokens/.exec(r.messages[1].content as string)?.[1]))));
    });
  });
});
