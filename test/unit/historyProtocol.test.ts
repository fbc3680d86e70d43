import * as assert from 'node:assert/strict';
import { ledgerEntry } from '../support/ledgerFixtures';
import {
  EMPTY_FILTER,
  isDay,
  isFromWebview,
  isHistoryFilter,
  isLedgerEntry,
  isToWebview,
  MAX_MODEL_CHARS,
  parseWebviewState,
} from '../../src/shared/historyProtocol';

const entry = ledgerEntry;

const filter = { model: 'GPT-4.1', from: '2025-03-01', to: '2025-03-31' };

describe('historyProtocol', () => {
  describe('isDay', () => {
    it('accepts real calendar days only', () => {
      assert.equal(isDay('2025-03-01'), true);
      assert.equal(isDay('2024-02-29'), true);
      for (const bad of [
        '2025-02-29',
        '2025-02-30',
        '2025-13-01',
        '2025-00-10',
        '2025-3-1',
        '2025-03-01T00:00',
        ' 2025-03-01',
        '1969-12-31',
        '',
        20250301,
        null,
      ]) {
        assert.equal(isDay(bad), false, String(bad));
      }
    });
  });

  describe('isHistoryFilter', () => {
    it('accepts the empty filter and a full one', () => {
      assert.equal(isHistoryFilter(EMPTY_FILTER), true);
      assert.equal(isHistoryFilter(filter), true);
    });
    it('rejects missing fields, wrong types, empty or huge model names and bad days', () => {
      const bad: unknown[] = [
        null,
        [],
        'x',
        { model: null, from: null }, // `to` missing (undefined is not null)
        { ...filter, model: '' },
        { ...filter, model: 'x'.repeat(MAX_MODEL_CHARS + 1) },
        { ...filter, model: 42 },
        { ...filter, from: '2025-02-30' },
        { ...filter, to: 'yesterday' },
        { ...filter, from: 0 },
      ];
      for (const b of bad) assert.equal(isHistoryFilter(b), false, JSON.stringify(b));
      assert.equal(isHistoryFilter({ ...filter, model: 'x'.repeat(MAX_MODEL_CHARS) }), true);
    });
  });

  describe('isFromWebview (host side: never trust the webview)', () => {
    it('accepts every well-formed message', () => {
      const good: unknown[] = [
        { type: 'ready', requestId: 1, filter: EMPTY_FILTER, rows: 0 },
        { type: 'ready', requestId: 0, filter, rows: 6000 },
        { type: 'setFilter', requestId: 2, filter },
        { type: 'loadMore', requestId: 3, filter, before: { time: '2025-03-01T12:00:00.000Z', id: 'req-1' } },
        { type: 'requestExport', filter: EMPTY_FILTER },
        { type: 'nextStep', step: 'copyBaseUrl' },
        { type: 'nextStep', step: 'configureClient' },
        { type: 'nextStep', step: 'walkthrough' },
      ];
      for (const g of good) assert.equal(isFromWebview(g), true, JSON.stringify(g));
    });

    it('rejects unknown types, missing or malformed fields', () => {
      const bad: unknown[] = [
        undefined,
        null,
        'ready',
        42,
        [],
        {},
        { type: 'nope' },
        { type: 'nextStep', step: 'workbench.action.terminal.new' }, // only the fixed steps, never a command name
        { type: 'nextStep' },
        { type: 'ready', requestId: 1, filter: EMPTY_FILTER }, // rows missing
        { type: 'ready', requestId: 1, filter: EMPTY_FILTER, rows: -1 },
        { type: 'ready', requestId: 1, filter: EMPTY_FILTER, rows: 1.5 },
        { type: 'ready', requestId: 1, filter: EMPTY_FILTER, rows: Infinity },
        { type: 'ready', requestId: -1, filter: EMPTY_FILTER, rows: 0 },
        { type: 'ready', requestId: '1', filter: EMPTY_FILTER, rows: 0 },
        { type: 'setFilter', requestId: 1 },
        { type: 'setFilter', requestId: 1, filter: { model: null, from: '2025/03/01', to: null } },
        { type: 'setFilter', requestId: NaN, filter },
        { type: 'loadMore', requestId: 1, filter },
        { type: 'loadMore', requestId: 1, filter, before: { time: '', id: 'x' } },
        { type: 'loadMore', requestId: 1, filter, before: { time: 't', id: 5 } },
        { type: 'loadMore', requestId: 1, filter, before: { time: 'x'.repeat(65), id: 'x' } },
        { type: 'loadMore', requestId: 1, before: { time: 't', id: 'x' } },
        { type: 'requestExport' },
        { type: 'requestExport', filter: { model: { toString: 1 }, from: null, to: null } },
        { type: 'init', requestId: 1, filter, entries: [], summary: {}, models: [], hasMore: false }, // a host message echoed back
      ];
      for (const b of bad) assert.equal(isFromWebview(b), false, JSON.stringify(b));
    });

    it('accepts prototype-less objects (structured clones) the same way', () => {
      assert.equal(isFromWebview(Object.assign(Object.create(null), { type: 'setFilter', requestId: 1, filter })), true);
    });
  });

  describe('isToWebview (webview side)', () => {
    const summary = {
      totals: { requests: 1, points: 10, tokensIn: 100, tokensOut: 50, estimatedPoints: 0 },
      byDay: [{ day: '2025-03-01', requests: 1, points: 10, tokensIn: 100, tokensOut: 50 }],
      byModel: [{ model: 'GPT-4.1', requests: 1, points: 10, tokensIn: 100, tokensOut: 50 }],
    };

    it('accepts every well-formed message', () => {
      const good: unknown[] = [
        { type: 'init', requestId: 1, filter, entries: [entry()], summary, models: ['GPT-4.1'], hasMore: false, refused: [], refusedTotal: 0 },
        {
          type: 'init',
          requestId: 2,
          filter,
          entries: [],
          summary,
          models: [],
          hasMore: false,
          refused: [
            { day: '2025-03-01', client: 'aider', reason: 'rate_limit', count: 1240, from: '2025-03-01T14:02:00.000Z', to: '2025-03-01T14:03:00.000Z' },
          ],
          refusedTotal: 1240,
        },
        {
          type: 'init',
          requestId: 3,
          filter,
          entries: [],
          summary,
          models: [],
          hasMore: true,
          refused: [],
          refusedTotal: 0,
          pending: { months: ['2025-02', '2025-01', ''], total: 11 },
        },
        { type: 'totals', filter, summary, models: ['GPT-4.1'], clients: ['cline'], refused: [], refusedTotal: 0, pending: { months: ['2025-01'], total: 3 } },
        { type: 'totals', filter: EMPTY_FILTER, summary, models: [], clients: [], refused: [], refusedTotal: 0 },
        { type: 'append', entry: entry({ points: null, balanceAfter: null, error: 'boom' }), day: '2025-03-01' },
        { type: 'append', entry: entry({ time: 'garbage' }), day: '' },
        { type: 'more', requestId: 4, entries: [], hasMore: false },
        { type: 'exportResult', ok: true, path: '/tmp/x.csv', count: 3 },
        { type: 'exportResult', ok: false, cancelled: true },
        { type: 'exportResult', ok: false, error: 'EACCES' },
        { type: 'refresh' },
        { type: 'error', message: 'x' },
      ];
      for (const g of good) assert.equal(isToWebview(g), true, JSON.stringify(g));
    });

    it('rejects malformed entries, summaries and results', () => {
      const bad: unknown[] = [
        { type: 'append', entry: entry(), day: 'today' },
        { type: 'append', entry: { ...entry(), status: 'weird' }, day: '' },
        { type: 'append', entry: { ...entry(), tokensIn: '5' }, day: '' },
        { type: 'append', entry: { ...entry(), points: NaN }, day: '' },
        { type: 'append', entry: { ...entry(), error: 5 }, day: '' },
        { type: 'init', requestId: 1, filter, entries: [entry()], summary: { ...summary, byDay: [{ day: 'x' }] }, models: [], hasMore: false },
        { type: 'init', requestId: 1, filter, entries: [entry()], summary, models: [1], hasMore: false },
        { type: 'init', requestId: 1, filter, entries: 'x', summary, models: [], hasMore: false, refused: [], refusedTotal: 0 },
        {
          type: 'init',
          requestId: 1,
          filter,
          entries: [],
          summary,
          models: [],
          hasMore: false,
          refused: [{ day: '2025-03-01', client: 'x', reason: 'nope', count: 1, from: '', to: '' }],
          refusedTotal: 1,
        },
        { type: 'init', requestId: 1, filter, entries: [], summary, models: [], hasMore: false }, // no refusals field
        { type: 'more', requestId: 1, entries: [{}], hasMore: false },
        // Counting progress: months as YYYY-MM, a whole total no smaller than the months left.
        ...[
          { months: ['2025-13'], total: 1 },
          { months: ['January'], total: 1 },
          { months: [202501], total: 1 },
          { months: ['2025-01', '2025-02'], total: 1 },
          { months: [], total: 1.5 },
          { months: 'all', total: 1 },
          { total: 1 },
          [],
        ].flatMap((pending) => [
          { type: 'init', requestId: 1, filter, entries: [], summary, models: [], hasMore: false, refused: [], refusedTotal: 0, pending },
          { type: 'totals', filter, summary, models: [], clients: [], refused: [], refusedTotal: 0, pending },
        ]),
        { type: 'totals', filter, summary, models: [], refused: [], refusedTotal: 0 }, // no clients
        { type: 'totals', filter: { model: 5 }, summary, models: [], clients: [], refused: [], refusedTotal: 0 },
        { type: 'totals', filter, summary: { ...summary, totals: {} }, models: [], clients: [], refused: [], refusedTotal: 0 },
        { type: 'totals', filter, summary, models: [], clients: [], refused: [], refusedTotal: '0' },
        { type: 'exportResult', ok: 'yes' },
        { type: 'exportResult', ok: true, path: 5 },
        { type: 'error' },
        { type: 'ready', requestId: 1, filter, rows: 0 },
      ];
      for (const b of bad) assert.equal(isToWebview(b), false, JSON.stringify(b));
    });

    it('isLedgerEntry accepts null points and balance', () => {
      assert.equal(isLedgerEntry(entry({ points: null, balanceAfter: null })), true);
      assert.equal(isLedgerEntry({ ...entry(), stream: 'true' }), false);
    });
  });

  describe('parseWebviewState', () => {
    it('restores a saved state and fills bad numbers with defaults', () => {
      assert.deepEqual(parseWebviewState({ filter, sort: { key: 'points', dir: 'asc' }, scrollY: 120, rows: 4000 }), {
        filter,
        sort: { key: 'points', dir: 'asc' },
        scrollY: 120,
        rows: 4000,
      });
      assert.deepEqual(parseWebviewState({ filter: EMPTY_FILTER, sort: { key: 'time', dir: 'desc' }, scrollY: -5, rows: 'x' }), {
        filter: EMPTY_FILTER,
        sort: { key: 'time', dir: 'desc' },
        scrollY: 0,
        rows: 0,
      });
    });

    it('gives undefined for missing or malformed state', () => {
      for (const bad of [
        undefined,
        null,
        {},
        { filter },
        { filter, sort: { key: 'id', dir: 'asc' } },
        { filter, sort: { key: 'time', dir: 'up' } },
        { filter: { model: 1 }, sort: { key: 'time', dir: 'asc' } },
      ]) {
        assert.equal(parseWebviewState(bad), undefined, JSON.stringify(bad));
      }
    });
  });
});
