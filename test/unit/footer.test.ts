import { strict as assert } from 'node:assert';
import { FOOTER_MARK, formatPoints, renderFooter, stripFooters, stripFooterText } from '../../src/core/footer';

describe('footer', () => {
  const info = { promptTokens: 1200, completionTokens: 34, points: 450, pointsEstimated: true, balance: 1_234_567 };

  it('renders tokens, points with est. and balance', () => {
    const f = renderFooter(info);
    assert.match(f, /Tokens: 1,234 \(in 1,200 \/ out 34\)/);
    assert.match(f, /Points: 450 \(est\.\)/);
    assert.match(f, /Balance: 1,234,567(?!\d)/); // exact, so a user sees it move
    assert.ok(f.includes(FOOTER_MARK));
    assert.doesNotMatch(renderFooter({ ...info, pointsEstimated: false }), /est\./);
  });

  it('shows clipping and warnings', () => {
    const f = renderFooter({ ...info, clippedMessages: 3, truncatedMessages: 1, warnings: ['too expensive'] });
    assert.match(f, /Context clipped: 3 older messages dropped, 1 shortened/);
    assert.match(f, /⚠ too expensive/);
  });

  it('formats points compactly', () => {
    assert.equal(formatPoints(999), '999');
    assert.equal(formatPoints(12345), '12,345');
    assert.equal(formatPoints(2_000_000), '2M');
  });

  it('strips the footer from assistant history, string and parts, without mutating', () => {
    const answer = 'The answer is 42.';
    const withFooter = answer + renderFooter({ ...info, warnings: ['w'] });
    assert.equal(stripFooterText(withFooter), answer);
    const msgs = [
      { role: 'user', content: `quote: ${FOOTER_MARK} stays in user text` },
      { role: 'assistant', content: withFooter },
      { role: 'assistant', content: [{ type: 'text', text: withFooter }] },
    ];
    const out = stripFooters(msgs);
    assert.equal(out[0], msgs[0]);
    assert.equal(out[1].content, answer);
    assert.deepEqual(out[2].content, [{ type: 'text', text: answer }]);
    assert.equal(msgs[1].content, withFooter);
  });

  it('returns the same array when there is nothing to strip', () => {
    const msgs = [{ role: 'assistant', content: 'plain' }];
    assert.equal(stripFooters(msgs), msgs);
  });
});
