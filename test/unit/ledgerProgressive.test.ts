/**
 * The history view answers at once when months need a whole read to be counted (after an upgrade, a
 * lost index directory or a time-zone change): totals of what is counted, the other months named in
 * `pending`; the rest is counted in the background, `onDidIndex` reports it, and the totals are then
 * exact. Rows are exact throughout (a page indexes the months it reaches).
 */
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Ledger, LedgerEntry, LedgerFilter, LedgerIndexing, LedgerView, NO_FILTER, summarize } from '../../src/core/store/ledger';
import { ledgerEntry } from '../support/ledgerFixtures';

const OLD_MONTHS = ['2025-01', '2025-02', '2025-03'];
const CURRENT = '2025-04';

/** `count` entries spread over `month`, at 20:00–23:59 UTC (another day in Tokyo than in UTC). */
function monthEntries(month: string, count: number, from = 0): LedgerEntry[] {
  const start = Date.parse(`${month}-01T20:00:00Z`);
  return Array.from({ length: count }, (_, i) =>
    ledgerEntry({
      time: new Date(start + i * Math.floor((27 * 86_400_000) / count) + (i % 4) * 3_600_000).toISOString(),
      id: `${month}-${from + i}`,
      model: i % 3 === 0 ? 'B' : 'A',
      client: i % 2 === 0 ? 'cline' : 'aider',
      points: 1 + (i % 7),
      tokensIn: 10 + i,
    }),
  );
}

/** What a view must show once everything is counted, computed from the entries themselves. */
function reference(entries: LedgerEntry[], filter: LedgerFilter = NO_FILTER): ReturnType<typeof summarize> {
  const days = (e: LedgerEntry): string => {
    const d = new Date(e.time);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  };
  return summarize(
    entries.filter(
      (e) =>
        (filter.model === null || e.model === filter.model) && (filter.from === null || days(e) >= filter.from) && (filter.to === null || days(e) <= filter.to),
    ),
  );
}

/** Resolves with the progress reports of `ledger` up to the one saying every month is counted. */
function untilCounted(ledger: Ledger, onProgress: (p: LedgerIndexing) => void = () => undefined): Promise<LedgerIndexing[]> {
  const seen: LedgerIndexing[] = [];
  return new Promise((resolve) => {
    const sub = ledger.onDidIndex((p) => {
      seen.push(p);
      onProgress(p);
      if (p.months.length === 0) {
        sub.dispose();
        resolve(seen);
      }
    });
  });
}

/** A view once nothing is left to count (waits for the background count, as the history panel does). */
async function settledView(ledger: Ledger, filter: LedgerFilter, rows: number): Promise<LedgerView> {
  for (;;) {
    const counted = untilCounted(ledger);
    const v = await ledger.view(filter, rows);
    if (!v.pending) return v;
    await counted;
  }
}

describe('Ledger progressive open', () => {
  let dir: string;
  let now: number;
  const opened: Ledger[] = [];
  const open = (): Ledger => {
    const l = new Ledger({ dir, now: () => now, retentionMonths: 0 });
    opened.push(l);
    return l;
  };

  /** The old months as an older version left them: one gzip member each, no index. */
  async function writeOldMonths(perMonth: number): Promise<LedgerEntry[]> {
    const all: LedgerEntry[] = [];
    for (const month of OLD_MONTHS) {
      const entries = monthEntries(month, perMonth);
      all.push(...entries);
      await fsp.writeFile(path.join(dir, `ledger-${month}.jsonl.gz`), gzipSync(entries.map((e) => `${JSON.stringify(e)}\n`).join('')));
    }
    return all;
  }

  /** Written first: the writer's maintenance would rewrite old months already there (with their index). */
  async function writeCurrentMonth(count: number): Promise<LedgerEntry[]> {
    const entries = monthEntries(CURRENT, count);
    const writer = open();
    for (const e of entries) writer.append(e);
    await writer.flush();
    return entries;
  }

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-progressive-'));
    now = Date.parse(`${CURRENT}-28T12:00:00Z`);
  });

  afterEach(async () => {
    for (const l of opened.splice(0)) await l.close(); // background counts and rewrites end before the directory goes
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('answers with the counted months and names the others, then reports each and gives exact totals', async () => {
    const current = await writeCurrentMonth(200);
    const old = await writeOldMonths(300);
    const l = open();
    const progress = untilCounted(l);
    const first = await l.view(NO_FILTER, 50);
    assert.deepEqual(first.pending, { months: ['2025-03', '2025-02', '2025-01'], total: 3 });
    assert.deepEqual(first.summary, reference(current), 'partial totals: the current month only');
    assert.deepEqual(
      first.entries.map((e) => e.id),
      current.slice(-50).map((e) => e.id),
    );
    assert.equal(first.hasMore, true);
    const reports = await progress;
    assert.deepEqual(
      reports.map((p) => p.months),
      [['2025-02', '2025-01'], ['2025-01'], []],
      'newest month first, one report per month',
    );
    const done = await l.view(NO_FILTER, 50);
    assert.equal(done.pending, undefined);
    assert.deepEqual(done.summary, reference([...old, ...current]));
    assert.deepEqual(done.models, ['A', 'B']);
    await l.close();
  });

  it('pages into months not counted yet with exact rows, and a filter stays exact', async () => {
    const current = await writeCurrentMonth(100);
    const old = await writeOldMonths(300);
    const all = [...old, ...current];
    const l = open();
    const counted = untilCounted(l);
    const filter: LedgerFilter = { model: 'B', from: null, to: null };
    const first = await l.view(filter, 60);
    assert.ok(first.pending, 'older months still being counted');
    const wanted = all.filter((e) => e.model === 'B');
    // "Load older" through every month while the count runs: each page indexes the month it reaches.
    const ids = first.entries.map((e) => e.id);
    let page = { entries: first.entries, hasMore: first.hasMore };
    while (page.hasMore) {
      page = await l.pageBefore(filter, { time: page.entries[0].time, id: page.entries[0].id }, 60);
      ids.unshift(...page.entries.map((e) => e.id));
    }
    assert.deepEqual(
      ids,
      wanted.map((e) => e.id),
    );
    await counted;
    assert.deepEqual((await l.view(filter, 60)).summary, reference(all, filter));
    await l.close();
  });

  it('after a time-zone change answers at once and counts every month again in the new zone', async () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'UTC';
      const current = await writeCurrentMonth(100);
      const old = await writeOldMonths(200);
      const all = [...old, ...current];
      const before = open();
      const utc = await settledView(before, NO_FILTER, 10);
      assert.deepEqual(utc.summary, reference(all));
      await before.flush(); // old months rewritten in pieces, with their index
      process.env.TZ = 'Asia/Tokyo';
      const l = open();
      const counted = untilCounted(l);
      const first = await l.view(NO_FILTER, 10);
      assert.deepEqual(first.pending?.months, ['2025-03', '2025-02', '2025-01'], 'no blocking rebuild of every month');
      assert.deepEqual(first.summary, reference(current), "the current month's totals in Tokyo days");
      await counted;
      const tokyo = await l.view(NO_FILTER, 10);
      assert.equal(tokyo.pending, undefined);
      assert.deepEqual(tokyo.summary, reference(all));
      assert.notDeepEqual(tokyo.summary.byDay, utc.summary.byDay, 'the days moved with the zone');
      await l.close();
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('rewrites each old month in pieces once, after the count; views during the rewrite stay exact', async () => {
    const current = await writeCurrentMonth(100);
    const old = await writeOldMonths(1500);
    const events: string[] = [];
    const none = (): void => undefined;
    const l = new Ledger({
      dir,
      now: () => now,
      retentionMonths: 0,
      logger: {
        trace: none,
        debug: none,
        info: (m) => void events.push(m),
        warn: (m) => void events.push(`warn ${m}`),
        error: (m) => void events.push(`error ${m}`),
      },
    });
    opened.push(l);
    const filter: LedgerFilter = { model: 'B', from: null, to: null };
    const views: Array<Promise<LedgerView>> = [];
    const counted = untilCounted(l, (p) => {
      if (p.months.length > 0) return;
      events.push('counted');
      // Opened as the rewrite starts: their pages reach into the months being rewritten.
      for (let i = 0; i < 3; i++) views.push(l.view(filter, 700));
    });
    await l.view(NO_FILTER, 10);
    await counted;
    await l.flush(); // the rewrite in pieces, after the count
    const all = [...old, ...current];
    const wanted = all.filter((e) => e.model === 'B').slice(-700);
    for (const v of await Promise.all(views)) {
      assert.deepEqual(
        v.entries.map((e) => e.id),
        wanted.map((e) => e.id),
      );
      assert.deepEqual(v.summary, reference(all, filter));
    }
    const rewrites = events.filter((m) => m.startsWith('ledger: rewrote'));
    assert.deepEqual(rewrites.map((m) => /rewrote (\S+)/.exec(m)?.[1]).sort(), OLD_MONTHS, `each month once: ${events.join(' | ')}`);
    assert.ok(events.indexOf('counted') < events.indexOf(rewrites[0]), `the count first: ${events.join(' | ')}`);
    assert.deepEqual(
      events.filter((m) => m.startsWith('warn') || m.startsWith('error')),
      [],
    );
    for (const month of OLD_MONTHS) {
      const index = JSON.parse(await fsp.readFile(path.join(dir, '.ledger-index', `ledger-${month}.jsonl.gz.json`), 'utf8'));
      assert.ok(index.pieces.length > 1, `${month} in pieces`);
    }
    assert.deepEqual((await settledView(open(), NO_FILTER, 10)).summary, reference(all), 'exact from the rewritten months');
  });

  it('counts an entry appended during the background count exactly once, with views running alongside', async () => {
    const current = await writeCurrentMonth(100);
    const old = await writeOldMonths(400);
    const l = open();
    const added: LedgerEntry[] = [];
    const views: Array<Promise<LedgerView>> = [];
    const counted = untilCounted(l, (p) => {
      if (p.months.length === 0) return;
      // While months are still being counted: new entries (this month, and a late one for January)
      // and views that each bring the current month's index up to date.
      const batch = [...monthEntries(CURRENT, 5, 1000 + added.length), ...monthEntries('2025-01', 1, 1000 + added.length)];
      for (const e of batch) l.append(e);
      added.push(...batch);
      views.push(l.view(NO_FILTER, 10), l.view(NO_FILTER, 10));
    });
    await l.view(NO_FILTER, 10);
    await counted;
    await Promise.all(views);
    assert.ok(added.length > 0, 'appended while counting');
    await l.flush();
    assert.deepEqual((await settledView(l, NO_FILTER, 10)).summary, reference([...old, ...current, ...added]));
    assert.deepEqual((await settledView(open(), NO_FILTER, 10)).summary, reference([...old, ...current, ...added]), 'the saved indexes too');
    await l.close();
  });
});
