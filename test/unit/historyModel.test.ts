import * as assert from 'node:assert/strict';
import { LedgerEntry, localDay, summarize } from '../../src/core/store/ledger';
import {
  addDays,
  addToSummary,
  applyFilter,
  buildChart,
  daysBetween,
  emptySummary,
  entryDetails,
  exportFileName,
  formatCompact,
  formatDuration,
  formatNumber,
  formatShortTime,
  formatTime,
  insertionIndex,
  latestPage,
  matchesFilter,
  niceStep,
  pageBefore,
  pointsKind,
  sortEntries,
} from '../../src/shared/historyModel';
import { EMPTY_FILTER, HistoryFilter, SORT_KEYS, SortState } from '../../src/shared/historyProtocol';
import { ledgerEntry, localTime as at } from '../support/ledgerFixtures';

/** ISO time of local `hour`:00 on the local day `day` (so host-local days are what the test says). */

let seq = 0;
function entry(over: Partial<LedgerEntry> = {}): LedgerEntry {
  seq++;
  return ledgerEntry({ time: at('2025-03-01'), id: `req-${seq}`, ...over });
}

const dayOf = (e: LedgerEntry): string => {
  const t = new Date(e.time);
  return Number.isNaN(t.getTime()) ? '' : localDay(t);
};

/** Deterministic pseudo-random generator. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomEntries(n: number, seed: number): LedgerEntry[] {
  const r = rng(seed);
  const models = ['A', 'B', 'c', 'Zed'];
  const out: LedgerEntry[] = [];
  for (let i = 0; i < n; i++) {
    const day = addDays('2025-02-25', Math.floor(r() * 10));
    out.push(
      entry({
        time: r() < 0.03 ? 'not a time' : at(day, Math.floor(r() * 24), Math.floor(r() * 3)),
        model: models[Math.floor(r() * models.length)],
        tokensIn: Math.floor(r() * 1000),
        tokensOut: Math.floor(r() * 300),
        points: r() < 0.2 ? null : Math.floor(r() * 50),
        pointsEstimated: r() < 0.3,
        balanceAfter: r() < 0.2 ? null : Math.floor(r() * 5) * 100,
        durationMs: Math.floor(r() * 5) * 1000,
        status: r() < 0.8 ? 'ok' : 'error',
      }),
    );
  }
  return out;
}

describe('historyModel', () => {
  describe('filtering', () => {
    const f = (over: Partial<HistoryFilter>): HistoryFilter => ({ ...EMPTY_FILTER, ...over });

    it('matches by exact model (case-sensitive)', () => {
      const e = entry({ model: 'GPT-4.1' });
      assert.equal(matchesFilter(e, '2025-03-01', f({ model: 'GPT-4.1' })), true);
      assert.equal(matchesFilter(e, '2025-03-01', f({ model: 'gpt-4.1' })), false);
      assert.equal(matchesFilter(e, '2025-03-01', EMPTY_FILTER), true);
    });

    it('treats from/to as inclusive local days', () => {
      const e = entry();
      assert.equal(matchesFilter(e, '2025-03-01', f({ from: '2025-03-01', to: '2025-03-01' })), true);
      assert.equal(matchesFilter(e, '2025-03-01', f({ from: '2025-03-02' })), false);
      assert.equal(matchesFilter(e, '2025-03-01', f({ to: '2025-02-28' })), false);
      assert.equal(matchesFilter(e, '2025-03-01', f({ from: '2025-02-01', to: '2025-03-31' })), true);
      assert.equal(matchesFilter(e, '2025-03-01', f({ from: '2025-03-05', to: '2025-03-01' })), false, 'an inverted range is empty');
    });

    it('hides entries without a day once a date range is set', () => {
      assert.equal(matchesFilter(entry(), '', EMPTY_FILTER), true);
      assert.equal(matchesFilter(entry(), '', f({ from: '2000-01-01' })), false);
    });

    it('filters by local day at the edges of the day', () => {
      const early = entry({ time: at('2025-03-02', 0, 0) });
      const late = entry({ time: at('2025-03-01', 23, 59) });
      const rows = applyFilter([late, early], f({ from: '2025-03-02' }), dayOf);
      assert.deepEqual(rows, [early]);
      assert.deepEqual(applyFilter([late, early], f({ to: '2025-03-01' }), dayOf), [late]);
    });

    it('combines model and dates and keeps order; no filter copies the list', () => {
      const list = [
        entry({ model: 'A', time: at('2025-03-01') }),
        entry({ model: 'B', time: at('2025-03-02') }),
        entry({ model: 'A', time: at('2025-03-03') }),
        entry({ model: 'A', time: at('2025-03-04') }),
      ];
      assert.deepEqual(applyFilter(list, f({ model: 'A', from: '2025-03-02', to: '2025-03-03' }), dayOf), [list[2]]);
      const all = applyFilter(list, EMPTY_FILTER, dayOf);
      assert.deepEqual(all, list);
      assert.notEqual(all, list);
    });
  });

  describe('paging', () => {
    const list = Array.from({ length: 10 }, (_, i) => entry({ id: `p${i}`, time: at('2025-03-01', 1, i) }));

    it('latestPage returns the newest entries oldest first', () => {
      assert.deepEqual(latestPage(list, 3), { entries: list.slice(7), hasMore: true });
      assert.deepEqual(latestPage(list, 10), { entries: list, hasMore: false });
      assert.deepEqual(latestPage(list, 50), { entries: list, hasMore: false });
      assert.deepEqual(latestPage([], 5), { entries: [], hasMore: false });
    });

    it('pageBefore walks back without gaps or overlaps', () => {
      const seen: LedgerEntry[] = [];
      let page = latestPage(list, 4);
      seen.unshift(...page.entries);
      while (page.hasMore) {
        page = pageBefore(list, { time: seen[0].time, id: seen[0].id }, 4);
        seen.unshift(...page.entries);
      }
      assert.deepEqual(seen, list);
    });

    it('pageBefore separates entries sharing a timestamp by id', () => {
      const same = [entry({ id: 'a', time: at('2025-03-01') }), entry({ id: 'b', time: at('2025-03-01') }), entry({ id: 'c', time: at('2025-03-01') })];
      assert.deepEqual(pageBefore(same, { time: same[2].time, id: 'c' }, 10).entries, same.slice(0, 2));
      assert.deepEqual(pageBefore(same, { time: same[1].time, id: 'b' }, 1), { entries: [same[0]], hasMore: false });
    });

    it('pageBefore falls back to strictly older entries when the cursor is gone', () => {
      const gone = { time: at('2025-03-01', 1, 5), id: 'rotated-away' };
      assert.deepEqual(pageBefore(list, gone, 3), { entries: list.slice(2, 5), hasMore: true });
      assert.deepEqual(pageBefore(list, { time: 'bad', id: 'x' }, 3), { entries: [], hasMore: false });
      assert.deepEqual(pageBefore(list, { time: at('2020-01-01'), id: 'x' }, 3), { entries: [], hasMore: false });
    });
  });

  describe('addToSummary', () => {
    it('gives the same result as summarize, entry by entry', () => {
      for (const seed of [1, 2, 3]) {
        const list = randomEntries(200, seed);
        let s = emptySummary();
        for (let i = 0; i < list.length; i++) {
          s = addToSummary(s, list[i], dayOf(list[i]));
          if (i % 37 === 0 || i === list.length - 1) assert.deepEqual(s, summarize(list.slice(0, i + 1)), `seed ${seed}, after ${i + 1}`);
        }
      }
    });

    it('does not change its input', () => {
      const before = summarize([entry({ time: at('2025-03-02') })]);
      const copy = JSON.parse(JSON.stringify(before));
      addToSummary(before, entry({ time: at('2025-03-01') }), '2025-03-01');
      addToSummary(before, entry({ time: at('2025-03-02') }), '2025-03-02');
      assert.deepEqual(before, copy);
    });

    it('inserts new days in order and counts estimated points', () => {
      let s = summarize([entry({ time: at('2025-03-01') }), entry({ time: at('2025-03-05') })]);
      s = addToSummary(s, entry({ time: at('2025-03-03'), points: 7, pointsEstimated: true }), '2025-03-03');
      assert.deepEqual(
        s.byDay.map((d) => d.day),
        ['2025-03-01', '2025-03-03', '2025-03-05'],
      );
      assert.equal(s.totals.estimatedPoints, 7);
      assert.equal(s.totals.points, 27);
    });
  });

  describe('sorting', () => {
    const list = randomEntries(120, 9);

    it('sorts ascending stably and descending as its exact reverse, missing values last', () => {
      for (const key of SORT_KEYS) {
        const asc = sortEntries(list, { key, dir: 'asc' });
        const desc = sortEntries(list, { key, dir: 'desc' });
        assert.equal(asc.length, list.length);
        const hasValue = (e: LedgerEntry): boolean =>
          key === 'points' ? e.points !== null : key === 'balanceAfter' ? e.balanceAfter !== null : key === 'time' ? Number.isFinite(Date.parse(e.time)) : true;
        const n = asc.filter(hasValue).length;
        assert.ok(
          asc.slice(n).every((e) => !hasValue(e)),
          `${key}: missing values last (asc)`,
        );
        assert.ok(
          desc.slice(n).every((e) => !hasValue(e)),
          `${key}: missing values last (desc)`,
        );
        assert.deepEqual(desc.slice(0, n), asc.slice(0, n).reverse(), key);
      }
    });

    it('sorts by time with file order breaking ties', () => {
      const a = entry({ id: 'a', time: at('2025-03-02') });
      const b = entry({ id: 'b', time: at('2025-03-01') });
      const c = entry({ id: 'c', time: at('2025-03-02') });
      assert.deepEqual(
        sortEntries([a, b, c], { key: 'time', dir: 'desc' }).map((e) => e.id),
        ['c', 'a', 'b'],
      );
      assert.deepEqual(
        sortEntries([a, b, c], { key: 'time', dir: 'asc' }).map((e) => e.id),
        ['b', 'a', 'c'],
      );
    });

    it('sorts models case-insensitively', () => {
      const l = [entry({ model: 'b' }), entry({ model: 'A' }), entry({ model: 'C' })];
      assert.deepEqual(
        sortEntries(l, { key: 'model', dir: 'asc' }).map((e) => e.model),
        ['A', 'b', 'C'],
      );
    });

    it('insertionIndex places a live entry exactly where a full re-sort would', () => {
      const base = randomEntries(60, 4);
      const extra = randomEntries(40, 5);
      for (const key of SORT_KEYS) {
        for (const dir of ['asc', 'desc'] as const) {
          const sort: SortState = { key, dir };
          const fileOrder = base.slice();
          let shown = sortEntries(fileOrder, sort);
          for (const e of extra) {
            fileOrder.push(e);
            shown = [...shown];
            shown.splice(insertionIndex(shown, e, sort), 0, e);
            assert.deepEqual(
              shown.map((x) => x.id),
              sortEntries(fileOrder, sort).map((x) => x.id),
              `${key} ${dir}`,
            );
          }
        }
      }
    });
  });

  describe('chart', () => {
    const day = (d: string, points: number, requests = 1) => ({ day: d, points, requests, tokensIn: 0, tokensOut: 0 });

    it('day arithmetic crosses months, years and DST without drifting', () => {
      assert.equal(addDays('2025-02-28', 1), '2025-03-01');
      assert.equal(addDays('2024-02-28', 1), '2024-02-29');
      assert.equal(addDays('2025-12-31', 1), '2026-01-01');
      assert.equal(addDays('2025-03-30', 1), '2025-03-31');
      assert.equal(addDays('2025-03-01', -1), '2025-02-28');
      assert.equal(daysBetween('2025-03-01', '2025-04-01'), 31);
      assert.equal(daysBetween('2025-10-25', '2025-10-27'), 2);
    });

    it('niceStep picks 1/2/2.5/5 × 10^k', () => {
      assert.equal(niceStep(0.7), 1);
      assert.equal(niceStep(1), 1);
      assert.equal(niceStep(1.3), 2);
      assert.equal(niceStep(2.2), 2.5);
      assert.equal(niceStep(3173), 5000);
      assert.equal(niceStep(7000), 10000);
      assert.equal(niceStep(0), 1);
    });

    it('is empty without data', () => {
      const g = buildChart([], { width: 400, height: 200 });
      assert.equal(g.bars.length, 0);
      assert.equal(g.yTicks.length, 0);
    });

    it('draws one slot per day, empty days included, heights proportional to points', () => {
      const g = buildChart([day('2025-03-01', 100), day('2025-03-03', 50)], { width: 400, height: 200 });
      assert.equal(g.bucketDays, 1);
      assert.deepEqual(
        g.bars.map((b) => [b.from, b.points]),
        [
          ['2025-03-01', 100],
          ['2025-03-02', 0],
          ['2025-03-03', 50],
        ],
      );
      const plotH = g.plot.bottom - g.plot.top;
      assert.ok(g.max >= 100);
      for (const b of g.bars) {
        assert.ok(Math.abs(b.h - (b.points / g.max) * plotH) < 1e-9);
        assert.ok(Math.abs(b.y + b.h - g.plot.bottom) < 1e-9, 'bars stand on the axis');
        assert.ok(b.x >= g.plot.left && b.x + b.w <= g.plot.right + 1e-9, 'bars stay inside the plot');
      }
      assert.equal(g.bars[1].h, 0);
      assert.ok(g.bars[0].x < g.bars[1].x && g.bars[1].x < g.bars[2].x);
    });

    it('ticks start at 0, end at max and are evenly spaced', () => {
      const g = buildChart([day('2025-03-01', 12693)], { width: 400, height: 200 });
      assert.equal(g.max, 15000);
      assert.deepEqual(
        g.yTicks.map((t) => t.value),
        [0, 5000, 10000, 15000],
      );
      assert.equal(g.yTicks[0].y, g.plot.bottom);
      assert.equal(g.yTicks[3].y, g.plot.top);
    });

    it('keeps a sane scale when every day has 0 points', () => {
      const g = buildChart([day('2025-03-01', 0), day('2025-03-02', 0)], { width: 400, height: 200 });
      assert.ok(g.max > 0);
      assert.ok(g.bars.every((b) => b.h === 0 && Number.isFinite(b.y)));
    });

    it('buckets long ranges into several days per bar without losing points', () => {
      const days = Array.from({ length: 365 }, (_, i) => day(addDays('2024-01-01', i), i % 7, 2));
      const g = buildChart(days, { width: 800, height: 200, maxBars: 90 });
      assert.ok(g.bars.length <= 90);
      assert.equal(g.bucketDays, 5);
      assert.equal(
        g.bars.reduce((s, b) => s + b.points, 0),
        days.reduce((s, d) => s + d.points, 0),
      );
      assert.equal(
        g.bars.reduce((s, b) => s + b.requests, 0),
        730,
      );
      assert.equal(g.bars[0].from, '2024-01-01');
      assert.equal(g.bars[0].to, '2024-01-05');
      assert.equal(g.bars[g.bars.length - 1].to, '2024-12-30');
    });

    it('caps bar width and label count', () => {
      const g = buildChart([day('2025-03-01', 5)], { width: 1000, height: 200, maxBarWidth: 40 });
      assert.equal(g.bars[0].w, 40);
      const many = buildChart(
        Array.from({ length: 60 }, (_, i) => day(addDays('2025-01-01', i), 1)),
        { width: 1000, height: 200, maxLabels: 5 },
      );
      assert.ok(many.xLabels.length <= 5);
      assert.equal(many.xLabels[0].text, '01-01');
    });
  });

  describe('formatting', () => {
    it('formats numbers, compact numbers and durations', () => {
      assert.equal(formatNumber(1234567), '1,234,567');
      assert.equal(formatNumber(12.345), '12.35');
      assert.equal(formatNumber(null), '—');
      assert.equal(formatCompact(5000), '5,000');
      assert.equal(formatCompact(15000), '15k');
      assert.equal(formatCompact(2_500_000), '2.5M');
      assert.equal(formatDuration(850), '850 ms');
      assert.equal(formatDuration(1234), '1.2 s');
      assert.equal(formatDuration(125_000), '2 m 05 s');
      assert.equal(formatDuration(-1), '—');
    });

    it('formats local times and leaves garbage alone', () => {
      assert.equal(formatTime(new Date(2025, 2, 1, 9, 5, 7).toISOString()), '2025-03-01 09:05:07');
      assert.equal(formatTime('garbage'), 'garbage');
      assert.equal(formatShortTime(new Date(2025, 2, 1, 9, 5, 7).toISOString()), '03-01 09:05');
      assert.equal(formatShortTime('garbage'), 'garbage');
    });

    it("lists a request's details with its failure reason first", () => {
      assert.deepEqual(
        entryDetails(entry({ error: 'Poe answered 502', httpStatus: 502, endpoint: 'chat', stream: true, retries: 2, client: 'claude-code', clipped: true })),
        ['Poe answered 502', 'HTTP 502', 'chat', 'stream', 'context clipped', '2 retries', 'client claude-code'],
      );
      assert.deepEqual(entryDetails(entry({ httpStatus: 200, endpoint: 'messages', stream: false, retries: 1, client: '', clipped: false })), [
        'HTTP 200',
        'messages',
        '1 retry',
      ]);
    });

    it('labels points as actual or estimated', () => {
      assert.equal(pointsKind(entry()), 'actual');
      assert.equal(pointsKind(entry({ pointsEstimated: true })), 'est.');
      assert.equal(pointsKind(entry({ points: null })), '');
    });

    it('suggests a safe export file name', () => {
      assert.equal(exportFileName(EMPTY_FILTER, '2025-03-09'), 'poe-cost-history-2025-03-09.csv');
      assert.equal(
        exportFileName({ model: 'Claude/Sonnet 4.5', from: '2025-03-01', to: null }, '2025-03-09'),
        'poe-cost-history-Claude_Sonnet_4.5-2025-03-01_to_2025-03-09.csv',
      );
    });
  });
});
