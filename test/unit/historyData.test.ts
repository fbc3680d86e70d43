import * as assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { Ledger, LedgerEntry, parseLedgerText, summarize } from '../../src/core/store/ledger';
import { clampRows, exportHistoryCsv, hostDay, loadHistory, loadOlder } from '../../src/vscode/historyData';
import { renderHistoryDocument } from '../../src/vscode/historyHtml';
import { EMPTY_FILTER, HistoryFilter, MAX_RESTORE_ROWS, PAGE_SIZE } from '../../src/shared/historyProtocol';
import { ledgerEntry, localTime as at } from '../support/ledgerFixtures';

function entry(i: number, over: Partial<LedgerEntry> = {}): LedgerEntry {
  return ledgerEntry({ time: at('2025-03-01', 12, i % 60), id: `req-${String(i).padStart(4, '0')}`, ...over });
}

/** CSV rows (without header) parsed back into ids: the id is the 2nd column. */
function csvIds(csv: string): string[] {
  return csv
    .split('\r\n')
    .slice(1)
    .filter(Boolean)
    .map((line) => line.split(',')[1]);
}

describe('historyData (host side of the history panel)', () => {
  let dir: string;
  let ledger: Ledger;
  /** Exports to a file and reads it back. */
  const historyCsv = async (l: Ledger, filter: HistoryFilter): Promise<{ csv: string; count: number }> => {
    const file = path.join(dir, `export-${Math.random().toString(36).slice(2)}.csv`);
    const count = await exportHistoryCsv(l, filter, file);
    return { csv: await fsp.readFile(file, 'utf8'), count };
  };
  // Three days, two models, plus one entry with a broken time.
  const entries: LedgerEntry[] = [
    entry(1, { time: at('2025-03-01', 9), model: 'A', points: 5 }),
    entry(2, { time: at('2025-03-01', 23, 59), model: 'B', points: 7, pointsEstimated: true }),
    entry(3, { time: at('2025-03-02', 0, 0), model: 'A', points: null }),
    entry(4, { time: at('2025-03-02', 15), model: 'B', points: 11, error: '=HYPERLINK("x")' }),
    entry(5, { time: 'not-a-time', model: 'A', points: 1 }),
    entry(6, { time: at('2025-03-03', 8), model: 'A', points: 13 }),
  ];

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hist-'));
    ledger = new Ledger({ dir, retentionMonths: 0 });
    for (const e of entries) ledger.append(e);
    await ledger.flush();
  });

  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('hostDay is the local day, or empty for a broken time', () => {
    assert.equal(hostDay(entries[1]), '2025-03-01');
    assert.equal(hostDay(entries[2]), '2025-03-02');
    assert.equal(hostDay(entries[4]), '');
  });

  it('clampRows keeps restore requests within bounds', () => {
    assert.equal(clampRows(0), PAGE_SIZE);
    assert.equal(clampRows(PAGE_SIZE + 10.7), PAGE_SIZE + 10);
    assert.equal(clampRows(1e9), MAX_RESTORE_ROWS);
    assert.equal(clampRows(NaN), PAGE_SIZE);
  });

  it('loads everything without a filter, with every model and the full summary', async () => {
    const snap = await loadHistory(ledger, EMPTY_FILTER);
    assert.equal(snap.entries.length, entries.length);
    assert.equal(snap.hasMore, false);
    assert.deepEqual(snap.models, ['A', 'B']);
    assert.deepEqual(snap.summary, summarize(await ledger.read()));
  });

  it('filters by model and by local-day range; the model list stays complete', async () => {
    const snap = await loadHistory(ledger, { model: 'A', from: '2025-03-02', to: '2025-03-03' });
    assert.deepEqual(
      snap.entries.map((e) => e.id),
      ['req-0003', 'req-0006'],
    );
    assert.deepEqual(snap.models, ['A', 'B']);
    assert.equal(snap.summary.totals.requests, 2);
    assert.equal(snap.summary.totals.points, 13);
    assert.deepEqual(
      snap.summary.byDay.map((d) => [d.day, d.points]),
      [
        ['2025-03-02', 0],
        ['2025-03-03', 13],
      ],
    );
    assert.deepEqual(
      snap.summary.byModel.map((m) => m.model),
      ['A'],
    );
    const day1 = await loadHistory(ledger, { model: null, from: '2025-03-01', to: '2025-03-01' });
    assert.deepEqual(
      day1.entries.map((e) => e.id),
      ['req-0001', 'req-0002'],
      '23:59 belongs to the day, 00:00 of the next day does not',
    );
    assert.equal(day1.summary.totals.estimatedPoints, 7);
  });

  it('caps the rows sent and pages back through the rest', async () => {
    const many = new Ledger({ dir: path.join(dir, 'many'), retentionMonths: 0 });
    const list = Array.from({ length: 25 }, (_, i) => entry(i, { time: at('2025-03-01', 10, Math.floor(i / 3)) })); // shared timestamps
    for (const e of list) many.append(e);
    await many.flush();
    const first = await loadHistory(many, EMPTY_FILTER, 10);
    assert.equal(first.entries.length, 10);
    assert.equal(first.hasMore, true);
    assert.equal(first.summary.totals.requests, 25, 'the summary covers every matching entry, not just the page');
    const got = [...first.entries];
    let more = true;
    while (more) {
      const page = await loadOlder(many, EMPTY_FILTER, { time: got[0].time, id: got[0].id }, 10);
      got.unshift(...page.entries);
      more = page.hasMore;
    }
    assert.deepEqual(
      got.map((e) => e.id),
      list.map((e) => e.id),
    );
  });

  it('pages back across month files, compressed ones included, with a model filter', async () => {
    let now = Date.parse('2025-01-15T00:00:00Z');
    const months = new Ledger({ dir: path.join(dir, 'months'), retentionMonths: 0, now: () => now });
    const list: LedgerEntry[] = [];
    for (const [m, n] of [
      ['01', 30],
      ['02', 7],
      ['03', 41],
    ] as const) {
      for (let i = 0; i < n; i++)
        list.push(entry(list.length, { time: `2025-${m}-${String(1 + (i % 27)).padStart(2, '0')}T10:00:00.000Z`, model: i % 3 === 0 ? 'rare' : 'common' }));
    }
    // Written in time order per month, as a proxy would.
    list.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    for (const e of list) months.append(e);
    await months.flush();
    now = Date.parse('2025-03-20T00:00:00Z');
    await months.maintain();
    assert.deepEqual((await fsp.readdir(path.join(dir, 'months'))).filter((n) => n.startsWith('ledger-')).sort(), [
      'ledger-2025-01.jsonl.gz',
      'ledger-2025-02.jsonl.gz',
      'ledger-2025-03.jsonl',
    ]);
    for (const filter of [EMPTY_FILTER, { model: 'rare', from: null, to: null }, { model: 'common', from: '2025-01-20', to: '2025-03-05' }]) {
      const expected = (await months.read()).filter(
        (e) => (filter.model === null || e.model === filter.model) && (!filter.from || hostDay(e) >= filter.from) && (!filter.to || hostDay(e) <= filter.to),
      );
      const first = await loadHistory(months, filter, 4);
      assert.equal(first.summary.totals.requests, expected.length);
      const got = [...first.entries];
      let more = first.hasMore;
      while (more) {
        const page = await loadOlder(months, filter, { time: got[0].time, id: got[0].id }, 4);
        assert.ok(page.entries.length > 0, 'hasMore promised a page');
        got.unshift(...page.entries);
        more = page.hasMore;
      }
      assert.deepEqual(
        got.map((e) => e.id),
        expected.map((e) => e.id),
        JSON.stringify(filter),
      );
    }
    // A cursor whose entry is gone: the page holds what is strictly older than its time.
    const gone = await loadOlder(months, EMPTY_FILTER, { time: '2025-02-03T12:00:00.000Z', id: 'deleted' }, 3);
    assert.deepEqual(
      gone.entries.map((e) => e.time),
      list
        .filter((e) => e.time < '2025-02-03T12:00:00.000Z')
        .slice(-3)
        .map((e) => e.time),
    );
  });

  it('shows refused requests as counts per day, client and reason, never as rows', async () => {
    const l = new Ledger({ dir: path.join(dir, 'refused'), retentionMonths: 0 });
    for (let i = 0; i < 50; i++) l.countRefused({ time: at('2025-03-01', 14, 2), client: 'aider', reason: 'rate_limit' });
    l.countRefused({ time: at('2025-03-02', 9), client: 'aider', reason: 'paused' });
    l.append(entry(1, { time: at('2025-03-01', 14, 3) }));
    await l.flush();
    const snap = await loadHistory(l, EMPTY_FILTER);
    assert.deepEqual(
      snap.entries.map((e) => e.id),
      ['req-0001'],
    );
    assert.equal(snap.refusedTotal, 51);
    assert.deepEqual(
      snap.refused.map((g) => [g.day, g.reason, g.count]),
      [
        ['2025-03-02', 'paused', 1],
        ['2025-03-01', 'rate_limit', 50],
      ],
    );
    const dayOne = await loadHistory(l, { model: null, from: '2025-03-01', to: '2025-03-01' });
    assert.equal(dayOne.refusedTotal, 50);
    // Refusals of the current minute show at once, before their summary line is written.
    l.countRefused({ time: at('2025-03-02', 9, 30), client: 'cline', reason: 'gate' });
    const live = await loadHistory(l, EMPTY_FILTER);
    assert.equal(live.refusedTotal, 52);
    assert.equal(live.refused[0].client, 'cline');
    assert.equal(
      (await l.readRefused()).reduce((n, r) => n + r.count, 0),
      51,
      'not written by the view',
    );
  });

  it('streams the CSV export: it waits for a slow file instead of buffering the ledger', async () => {
    const big = new Ledger({ dir: path.join(dir, 'big'), retentionMonths: 0 });
    for (let i = 0; i < 20_000; i++) big.append(entry(i, { error: 'e'.repeat(100) }));
    await big.flush();
    let written = 0;
    let maxBuffered = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, done) {
        written += chunk.length;
        setTimeout(done, 20); // a slow disk
      },
    });
    const watch = setInterval(() => (maxBuffered = Math.max(maxBuffered, slow.writableLength)), 0);
    const count = await big.exportCsv(EMPTY_FILTER, slow);
    clearInterval(watch);
    maxBuffered = Math.max(maxBuffered, slow.writableLength);
    assert.equal(count, 20_000);
    assert.ok(written + slow.writableLength > 4_000_000, `the whole CSV went out (${written} bytes)`);
    assert.ok(maxBuffered < 1_000_000, `at most about a read chunk waits in memory, not the ledger: ${maxBuffered} bytes`);
  });

  for (const [month, now] of [
    ['the live month', () => Date.parse('2025-03-20T00:00:00Z')],
    ['a closed month in pieces', Date.now],
  ] as const) {
    it(`reports the rows exported as it goes, and a cancel stops it and leaves no file behind (${month})`, async () => {
      const warnings: string[] = [];
      const none = (): void => undefined;
      const logger = { trace: none, debug: none, info: none, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) };
      const big = new Ledger({ dir: path.join(dir, 'big'), retentionMonths: 0, logger, now });
      for (let i = 0; i < 20_000; i++) big.append(entry(i));
      await big.flush();
      const heard: number[] = [];
      const done = path.join(dir, 'all.csv');
      assert.equal(await exportHistoryCsv(big, EMPTY_FILTER, done, { onRows: (rows) => heard.push(rows) }), 20_000);
      assert.ok(heard.length > 3, `progress is reported chunk by chunk (${heard.length} reports)`);
      assert.deepEqual(
        heard,
        [...heard].sort((a, b) => a - b),
        'never goes back',
      );
      assert.equal(heard.at(-1), 20_000);

      const abort = new AbortController();
      const file = path.join(dir, 'cancelled.csv');
      let reports = 0;
      const cancelled = exportHistoryCsv(big, EMPTY_FILTER, file, {
        signal: abort.signal,
        onRows: () => {
          if (++reports === 2) abort.abort(new Error('cancelled by the user'));
        },
      });
      await assert.rejects(cancelled, /cancelled by the user/);
      assert.equal(reports, 2, 'nothing more is written once cancelled');
      assert.deepEqual(
        (await fsp.readdir(dir)).filter((f) => f.startsWith('cancelled')),
        [],
        'neither the file nor its temporary part is left',
      );

      // A failing output (a full disk) fails the export at once, and is not taken for a damaged ledger.
      let writes = 0;
      const failing = new Writable({
        write(_chunk, _enc, done) {
          done(++writes === 3 ? Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) : undefined);
        },
      });
      await assert.rejects(big.exportCsv(EMPTY_FILTER, failing), /ENOSPC/);
      assert.equal(writes, 3, 'nothing more is tried after the failure');
      assert.deepEqual(warnings, [], 'no ledger file is reported unreadable');
    });
  }

  describe('a file that fails ends the export with the reason', () => {
    /** More rows than the file stream buffers, so the export waits for 'drain' between chunks. */
    const manyEntries = async (): Promise<Ledger> => {
      const many = new Ledger({ dir: path.join(dir, 'many'), retentionMonths: 0 });
      for (let i = 0; i < 2_000; i++) many.append(entry(i));
      await many.flush();
      return many;
    };

    it('the folder picked in the save dialog was deleted: fails before the ledger is read (no uncaught error, no wait forever)', async () => {
      await assert.rejects(exportHistoryCsv(await manyEntries(), EMPTY_FILTER, path.join(dir, 'deleted', 'export.csv')), /ENOENT/);
    });

    it('a write fails (a full disk): fails, and leaves neither the file nor its part', async function () {
      if (!existsSync('/dev/full')) this.skip(); // Linux: every write to it fails with ENOSPC
      // The part file is named after this process: a link to /dev/full there makes every write fail.
      const file = path.join(dir, 'full.csv');
      await fsp.symlink('/dev/full', `${file}.${process.pid}.part`);
      await assert.rejects(exportHistoryCsv(await manyEntries(), EMPTY_FILTER, file), /ENOSPC/);
      assert.deepEqual(
        (await fsp.readdir(dir)).filter((f) => f.startsWith('full')),
        [],
      );
    });
  });

  it('exports only the filtered rows as CSV, oldest first, with the ledger columns', async () => {
    const { csv, count } = await historyCsv(ledger, { model: 'B', from: null, to: null });
    assert.equal(count, 2);
    assert.deepEqual(csvIds(csv), ['req-0002', 'req-0004']);
    assert.ok(csv.startsWith('time,id,model,'));
    assert.ok(csv.includes(`"'=HYPERLINK(""x"")"`), 'formula-looking text is defused by toCsv');
    const ranged = await historyCsv(ledger, { model: null, from: '2025-03-02', to: null });
    assert.deepEqual(csvIds(ranged.csv), ['req-0003', 'req-0004', 'req-0006']);
    const none = await historyCsv(ledger, { model: 'nope', from: null, to: null });
    assert.equal(none.count, 0);
    assert.equal(none.csv.split('\r\n').filter(Boolean).length, 1, 'header only');
  });

  it('works on an empty ledger', async () => {
    const empty = new Ledger({ dir: path.join(dir, 'empty'), retentionMonths: 0 });
    const snap = await loadHistory(empty, EMPTY_FILTER);
    assert.deepEqual(snap.entries, []);
    assert.deepEqual(snap.models, []);
    assert.equal(snap.summary.totals.requests, 0);
    assert.deepEqual(await loadOlder(empty, EMPTY_FILTER, { time: at('2025-03-01'), id: 'x' }), { entries: [], hasMore: false });
    assert.equal(parseLedgerText((await historyCsv(empty, EMPTY_FILTER)).csv).length, 0);
  });
});

describe('historyHtml', () => {
  const html = renderHistoryDocument({
    csp: "default-src 'none'; style-src https://x; script-src 'nonce-abc+/='; img-src https://x data:;",
    nonce: 'abc+/=',
    scriptUri: 'https://x/dist/webview/history.js',
    styleUri: 'https://x/media/history.css',
  });

  it('carries the CSP and loads the script with its nonce', () => {
    assert.match(
      html,
      /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src https:\/\/x; script-src 'nonce-abc\+\/='; img-src https:\/\/x data:;">/,
    );
    assert.match(html, /<script nonce="abc\+\/=" src="https:\/\/x\/dist\/webview\/history.js"><\/script>/);
    assert.equal((html.match(/<script/g) ?? []).length, 1, 'no other (inline) script');
    assert.doesNotMatch(html, /style="/, 'no inline styles (the CSP would block them)');
  });

  it('has the DOM ids the script and the e2e tests rely on', () => {
    for (const id of [
      'history-table',
      'totals',
      'points-chart',
      'export-csv',
      'filter-model',
      'filter-from',
      'filter-to',
      'clear-filters',
      'load-more',
      'export-status',
      'rows-info',
    ]) {
      assert.match(html, new RegExp(`id="${id}"`), id);
    }
  });

  it('labels every control and scopes every header', () => {
    for (const id of ['filter-model', 'filter-from', 'filter-to']) assert.match(html, new RegExp(`<label for="${id}">`), id);
    const ths = html.match(/<th\b[^>]*>/g) ?? [];
    assert.ok(ths.length >= 9);
    for (const th of ths) assert.match(th, /scope="col"/, th);
  });
});
