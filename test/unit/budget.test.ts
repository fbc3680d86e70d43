import * as assert from 'node:assert/strict';
import { budgetPausedText, SpendTracker } from '../../src/core/store/budget';
import { formatPoints } from '../../src/core/exchange/footer';
import { localTime } from '../support/ledgerFixtures';

describe('SpendTracker', () => {
  const limits = (daily: number, monthly: number) => ({ pointsBudgetDaily: daily, pointsBudgetMonthly: monthly });

  it("counts today's and this month's spend in local days, moved by corrections", () => {
    let now = new Date(localTime('2025-03-15', 23, 30)).getTime();
    const t = new SpendTracker(() => now);
    t.add({ time: localTime('2025-03-15', 9), points: 100 });
    t.add({ time: localTime('2025-03-15', 23, 10), points: 50 });
    t.add({ time: localTime('2025-03-01', 0, 5), points: 1_000 });
    t.add({ time: localTime('2025-02-28', 23, 55), points: 7_000 });
    t.add({ time: localTime('2025-03-15', 10), points: null });
    assert.deepEqual(t.spent(), { today: 150, month: 1_150 });
    t.correct(localTime('2025-03-15', 9), 100, 40);
    assert.deepEqual(t.spent(), { today: 90, month: 1_090 });
    now = new Date(localTime('2025-03-16', 0, 1)).getTime();
    assert.deepEqual(t.spent(), { today: 0, month: 1_090 }, 'a new local day starts at zero');
    now = new Date(localTime('2025-04-01', 0, 1)).getTime();
    assert.deepEqual(t.spent(), { today: 0, month: 0 });
  });

  it('is exhausted at 100% of a budget that is on, warns from 80%, and 0 means off', () => {
    const now = new Date(localTime('2025-03-15', 12)).getTime();
    const t = new SpendTracker(() => now);
    t.add({ time: localTime('2025-03-15', 9), points: 800 });
    assert.equal(t.exhausted(limits(0, 0)), undefined);
    assert.deepEqual(
      t.nearlyExhausted(limits(1_000, 0)).map((s) => s.period),
      ['daily'],
    );
    assert.deepEqual(
      t.nearlyExhausted(limits(1_001, 0)).map((s) => s.period),
      [],
    );
    assert.equal(t.exhausted(limits(1_000, 0)), undefined);
    assert.equal(t.exhausted(limits(800, 0))?.period, 'daily');
    assert.equal(t.exhausted(limits(5_000, 800))?.period, 'monthly');
    assert.deepEqual(
      t.nearlyExhausted(limits(1_000, 0), 300).map((s) => Math.round(s.ratio * 100)),
      [110],
      'the answer being rendered counts too',
    );
  });

  it('names the budget and how to raise it in the paused answer', () => {
    const text = budgetPausedText({ period: 'monthly', spent: 123_456, budget: 100_000, ratio: 1.23 }, formatPoints);
    assert.match(text, /monthly points budget of 100,000 is used up \(123,456 spent\)/);
    assert.match(text, /poeProxy\.pointsBudgetMonthly/);
    assert.match(text, /POINTS_BUDGET_MONTHLY/);
  });
});
