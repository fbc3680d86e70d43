import { strict as assert } from 'node:assert';
import { ANTHROPIC_BETA_ALLOWLIST, foldSystemMessages, forwardsSystemMessages, MID_CONVERSATION_SYSTEM_BETA } from '../../src/core/exchange/anthropic';

const reminder = (text: string) => ({ type: 'text', text: `<system-reminder>\n${text}\n</system-reminder>` });
const text = (t: string) => ({ type: 'text', text: t });

describe('foldSystemMessages (mid-conversation system messages for a Poe that does not take them)', () => {
  it('returns the same array when there is nothing to fold', () => {
    const messages = [{ role: 'user', content: 'a' }];
    assert.equal(foldSystemMessages(messages), messages);
  });

  it('appends to the user turn before it, after its tool results, without mutating the input', () => {
    const input = [
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'ok' }] },
      { role: 'system', content: 'one' },
      { role: 'system', content: 'two' },
    ];
    const copy = structuredClone(input);
    assert.deepEqual(foldSystemMessages(input), [
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'ok' }, reminder('one'), reminder('two')] },
    ]);
    assert.deepEqual(input, copy);
  });

  it('puts a system message with no user turn before it first in the next user turn', () => {
    assert.deepEqual(
      foldSystemMessages([
        { role: 'system', content: 'rules' },
        { role: 'user', content: 'q' },
      ]),
      [{ role: 'user', content: [reminder('rules'), text('q')] }],
    );
    assert.deepEqual(
      foldSystemMessages([
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
        { role: 'system', content: 'mid' },
        { role: 'user', content: 'q2' },
      ]),
      [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
        { role: 'user', content: [reminder('mid'), text('q2')] },
      ],
    );
  });

  it("keeps a following user turn's tool results first (Anthropic refuses text before them)", () => {
    const toolResult = { type: 'tool_result', tool_use_id: 't1', content: 'out' };
    assert.deepEqual(
      foldSystemMessages([
        { role: 'user', content: 'q' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Bash', input: {} }] },
        { role: 'system', content: 'mid' },
        { role: 'user', content: [toolResult, text('more')] },
      ]).at(-1),
      { role: 'user', content: [toolResult, reminder('mid'), text('more')] },
    );
  });

  it('sends it as a user turn of its own between assistant turns or after the last one', () => {
    assert.deepEqual(
      foldSystemMessages([
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
        { role: 'system', content: 'mid' },
        { role: 'assistant', content: 'b' },
      ]),
      [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
        { role: 'user', content: [reminder('mid')] },
        { role: 'assistant', content: 'b' },
      ],
    );
    assert.deepEqual(
      foldSystemMessages([
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
        { role: 'system', content: 'end' },
      ]).at(-1),
      { role: 'user', content: [reminder('end')] },
    );
  });

  it('keeps every text block and the last cache breakpoint; blocks without text are kept as JSON', () => {
    const [folded] = foldSystemMessages([
      { role: 'user', content: 'q' },
      { role: 'system', content: [text('a'), { type: 'tool_removal', name: 'x' }, { type: 'text', text: 'b', cache_control: { type: 'ephemeral' } }] },
    ]);
    assert.deepEqual((folded.content as unknown[]).at(-1), {
      type: 'text',
      text: '<system-reminder>\na\n\n{"type":"tool_removal","name":"x"}\n\nb\n</system-reminder>',
      cache_control: { type: 'ephemeral' },
    });
  });
});

describe('forwardsSystemMessages', () => {
  it('forwards only when the client sent the beta and Poe is known to accept it', () => {
    assert.equal(ANTHROPIC_BETA_ALLOWLIST.includes(MID_CONVERSATION_SYSTEM_BETA), false, 'not known today');
    assert.equal(forwardsSystemMessages(MID_CONVERSATION_SYSTEM_BETA), false);
    const accepting = [...ANTHROPIC_BETA_ALLOWLIST, MID_CONVERSATION_SYSTEM_BETA];
    assert.equal(forwardsSystemMessages(`claude-code-20250219, ${MID_CONVERSATION_SYSTEM_BETA}`, accepting), true);
    assert.equal(forwardsSystemMessages(undefined, accepting), false);
  });
});
