/**
 * The live month's blocks: its index describes runs of lines (byte range, models, clients, time range,
 * corrections), extended as the file grows, so filters, pages and cursors read only the blocks that can
 * matter; results are the same as a plain read of the whole ledger.
 */
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ledger, LedgerEntry, LedgerFilter, LedgerOptions, localDay } from '../../src/core/store/ledger';
import { BLOCK_BYTES, BLOCK_LINES, blockMatches, type Block } from '../../src/core/store/ledgerBlocks';
import { ledgerEntry } from '../support/ledgerFixtures';
import { seededRandom } from '../support/random';

const MARCH = 'ledger-2025-03.jsonl';
const START = Date.parse('2025-03-01T00:00:00Z');
const NOW = Date.parse('2025-03-20T12:00:00Z');

const matches = (f: LedgerFilter, e: LedgerEntry): boolean =>
  (f.model === null || e.model === f.model) &&
  (f.client == null || e.client === f.client) &&
  (f.from === null || localDay(new Date(e.time)) >= f.from) &&
  (f.to === null || localDay(new Date(e.time)) <= f.to);

const ids = (entries: LedgerEntry[]): string[] => entries.map((e) => `${e.id}:${e.points}:${e.pointsEstimated}`);

describe('Ledger live-file blocks', () => {
  let dir: string;
  const open = (over: Partial<LedgerOptions> = {}): Ledger => new Ledger({ dir, now: () => NOW, retentionMonths: 0, ...over });
  const indexJson = async (): Promise<{ size: number; blocks: Block[] }> =>
    JSON.parse(await fsp.readFile(path.join(dir, '.ledger-index', `${MARCH}.json`), 'utf8'));

  /** Bytes of `name` read while `fn` runs (every read of a file handle opened on it). */
  async function countBytes<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; bytes: number }> {
    const real = fsp.open;
    let bytes = 0;
    fsp.open = (async (file: Parameters<typeof real>[0], ...rest: unknown[]) => {
      const fh = await (real as (...a: unknown[]) => ReturnType<typeof real>)(file, ...rest);
      if (String(file).endsWith(name)) {
        const read = fh.read.bind(fh) as (...a: unknown[]) => Promise<{ bytesRead: number }>;
        (fh as unknown as { read: unknown }).read = async (...a: unknown[]) => {
          const r = await read(...a);
          bytes += r.bytesRead;
          return r;
        };
      }
      return fh;
    }) as typeof real;
    try {
      return { value: await fn(), bytes };
    } finally {
      fsp.open = real;
    }
  }

  /** Every matching entry by pages of `size` (view, then pageBefore from the oldest shown), oldest first. */
  async function pageAll(l: Ledger, filter: LedgerFilter, size: number): Promise<LedgerEntry[]> {
    let page: { entries: LedgerEntry[]; hasMore: boolean } = await l.view(filter, size);
    const got = [...page.entries];
    for (let guard = 0; page.hasMore && guard < 1000; guard++) {
      const oldest = page.entries[0];
      page = await l.pageBefore(filter, { time: oldest.time, id: oldest.id }, size);
      got.unshift(...page.entries);
    }
    return got;
  }

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-blocks-'));
  });

  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('filters and pages a randomized live month exactly as a plain read does, while two writers append and the index grows', async () => {
    const rnd = seededRandom(14);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const writers = [open(), open()];
    const reader = open();
    const corrections: Array<{ at: number; id: string; time: string; points: number; by: Ledger }> = [];
    let n = 0;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 600; i++, n++) {
        // A little out of time order, as entries are written when their request ends.
        const time = new Date(START + n * 400_000 + Math.floor((rnd() - 0.5) * 600_000)).toISOString();
        const estimated = rnd() < 0.2;
        const e = ledgerEntry({
          time,
          id: `r${n}`,
          model: rnd() < 0.01 ? 'Rare' : pick(['A', 'A', 'B', 'C']),
          client: pick(['cline', 'aider', 'codex']),
          points: 1 + Math.floor(rnd() * 50),
          pointsEstimated: estimated,
        });
        const w = writers[n % 2];
        w.append(e);
        // Corrections follow their entry (from the same writer) by up to ~1,500 lines, in other blocks;
        // some entries get two (the first wins).
        if (estimated && rnd() < 0.6) corrections.push({ at: n + Math.floor(rnd() * 1500), id: e.id, time, points: 100 + n, by: w });
        if (estimated && rnd() < 0.1) corrections.push({ at: n + 1 + Math.floor(rnd() * 1500), id: e.id, time, points: 900_000 + n, by: w });
        for (const c of corrections.filter((x) => x.at === n))
          c.by.appendCorrection({ id: c.id, time: c.time, points: c.points, estimate: 1, queryId: `q${c.at}`, at: time });
        if (rnd() < 0.01) w.countRefused({ time, client: pick(['cline', 'aider']), reason: 'rate_limit' });
        if (i % 97 === 0) await w.flush();
      }
      // The index is extended while the writers go on appending.
      const growing = reader.view({ model: null, from: null, to: null }, 10);
      await Promise.all([...writers.map((w) => w.flush()), growing]);
    }
    await Promise.all(writers.map((w) => w.flush()));
    const all = await reader.read();
    assert.equal(all.length, n);
    const { blocks, size } = await indexJson();
    assert.ok(blocks.length >= 5, `${blocks.length} blocks`);
    const day = (i: number): string => localDay(new Date(START + i * 400_000));
    const filters: LedgerFilter[] = [
      { model: null, from: null, to: null },
      { model: 'Rare', from: null, to: null },
      { model: 'B', client: 'aider', from: null, to: null },
      { model: null, client: 'codex', from: day(1200), to: day(2000) },
      { model: 'C', from: day(3000), to: null },
      { model: 'Rare', from: null, to: day(1800) },
    ];
    for (const filter of filters) {
      const want = all.filter((e) => matches(filter, e));
      assert.ok(want.length > 0, JSON.stringify(filter));
      assert.deepEqual(ids(await pageAll(reader, filter, 97)), ids(want), `paged ${JSON.stringify(filter)}`);
      // A cursor whose entry is gone: the entries strictly older than its time.
      const cut = want[Math.floor(want.length / 2)].time;
      const gone = await reader.pageBefore(filter, { time: cut, id: 'gone' }, 40);
      const older = want.filter((e) => Date.parse(e.time) < Date.parse(cut));
      assert.deepEqual(ids(gone.entries), ids(older.slice(-40)), `before a vanished cursor, ${JSON.stringify(filter)}`);
      assert.equal(gone.hasMore, older.length > 40);
    }
    // Blocks are contiguous, describe the file up to the index's size, and only the last is not full.
    assert.equal(blocks[0].off, 0);
    for (let i = 1; i < blocks.length; i++) assert.equal(blocks[i].off, blocks[i - 1].off + blocks[i - 1].len);
    assert.equal(blocks[blocks.length - 1].off + blocks[blocks.length - 1].len, size);
    for (const b of blocks.slice(0, -1)) assert.ok(b.lines >= BLOCK_LINES || b.len >= BLOCK_BYTES, `a closed block of ${b.lines} lines, ${b.len} bytes`);
  });

  it('a rare-model filter, its next page and its cursor read only the blocks that can match, and of the others only those correcting its rows', async () => {
    const w = open();
    const count = 12_000;
    const entries = Array.from({ length: count }, (_, i) =>
      ledgerEntry({
        time: new Date(START + i * 100_000).toISOString(),
        id: `e${i}`,
        model: i % 3000 === 1500 ? 'Rare' : i % 2 ? 'A' : 'B',
        pointsEstimated: true,
      }),
    );
    // As an agent's requests are booked: every one estimated, and corrected a hundred requests later.
    const correct = (e: LedgerEntry, i: number): void =>
      w.appendCorrection({ id: e.id, time: e.time, points: 100_000 + i, estimate: e.points!, queryId: `q${i}`, at: e.time });
    entries.forEach((e, i) => {
      w.append(e);
      if (i >= 100) correct(entries[i - 100], i - 100);
    });
    entries.slice(-100).forEach((e, i) => correct(e, count - 100 + i));
    await w.flush();
    const l = open();
    await l.query(); // the index is built: what follows is the filter's own reading
    const size = (await fsp.stat(path.join(dir, MARCH))).size;
    const { blocks } = await indexJson();
    const rare: LedgerFilter = { model: 'Rare', from: null, to: null };
    const matching = blocks.filter((b) => blockMatches({ ...b, t0: b.t0 ?? NaN, t1: b.t1 ?? NaN }, rare));
    assert.equal(matching.length, 4);
    // Blocks without the rare model hold the corrections of its entries.
    const rareTimes = entries.filter((e) => e.model === 'Rare').map((e) => Date.parse(e.time));
    const correcting = blocks.filter((b) => !matching.includes(b) && rareTimes.some((t) => b.c0 <= t && t <= b.c1));
    assert.ok(correcting.length >= 1 && blocks.every((b) => b.corrections > 0));
    const mayMatter = matching.reduce((s, b) => s + b.len, 0) + correcting.reduce((s, b) => s + b.len, 0);
    const first = await countBytes(MARCH, () => l.view(rare, 2));
    assert.deepEqual(
      first.value.entries.map((e) => [e.id, e.points]),
      [
        ['e7500', 107_500],
        ['e10500', 110_500],
      ],
    );
    assert.ok(first.bytes <= mayMatter, `read ${first.bytes} bytes of ${size}; the blocks that can matter hold ${mayMatter}`);
    const oldest = first.value.entries[0];
    const next = await countBytes(MARCH, () => l.pageBefore(rare, { time: oldest.time, id: oldest.id }, 10));
    assert.deepEqual(
      next.value.entries.map((e) => [e.id, e.points]),
      [
        ['e1500', 101_500],
        ['e4500', 104_500],
      ],
    );
    // The cursor is looked up in the one block spanning its time, then the walk reads the matching blocks.
    const spanning = blocks.find((b) => b.t0 <= Date.parse(oldest.time) && Date.parse(oldest.time) <= b.t1)!;
    assert.ok(next.bytes <= mayMatter + spanning.len, `read ${next.bytes} bytes of ${size}`);
    assert.ok(size > 5 * mayMatter, `${mayMatter} of ${size} bytes can matter`);
  });

  it("applies a correction written blocks after its entry, and an entry's first correction wins", async () => {
    const w = open();
    const est = ledgerEntry({ time: new Date(START).toISOString(), id: 'est', model: 'Rare', points: 10, pointsEstimated: true });
    w.append(est);
    for (let i = 0; i < 3 * BLOCK_LINES; i++) w.append(ledgerEntry({ time: new Date(START + 1000 + i * 1000).toISOString(), id: `a${i}`, model: 'A' }));
    w.appendCorrection({ id: 'est', time: est.time, points: 42, estimate: 10, queryId: 'q1', at: '2025-03-01T01:00:00.000Z' });
    for (let i = 0; i < 2 * BLOCK_LINES; i++) w.append(ledgerEntry({ time: new Date(START + 5_000_000 + i * 1000).toISOString(), id: `b${i}`, model: 'A' }));
    w.appendCorrection({ id: 'est', time: est.time, points: 77, estimate: 10, queryId: 'q2', at: '2025-03-01T02:00:00.000Z' });
    await w.flush();
    const l = open();
    const rare: LedgerFilter = { model: 'Rare', from: null, to: null };
    const view = await l.view(rare, 10);
    const { blocks } = await indexJson();
    const withCorrections = blocks.filter((b) => b.corrections > 0);
    assert.equal(withCorrections.length, 2);
    assert.ok(!withCorrections.some((b) => b.models.includes('Rare')), 'the corrections lie in blocks without the rare model');
    assert.deepEqual(
      view.entries.map((e) => [e.id, e.points, e.pointsEstimated, e.replacedEstimate]),
      [['est', 42, false, 10]],
    );
    // Also on a page before a cursor (the corrections are newer than the cursor's block).
    const last = ledgerEntry({ time: new Date(START + 9_000_000).toISOString(), id: 'last', model: 'Rare' });
    w.append(last);
    await w.flush();
    const page = await l.pageBefore(rare, { time: last.time, id: last.id }, 10);
    assert.deepEqual(
      page.entries.map((e) => [e.id, e.points]),
      [['est', 42]],
    );
  });

  it('rebuilds a live index from before blocks, and never describes a line still being written', async () => {
    const w = open();
    for (let i = 0; i < 800; i++) w.append(ledgerEntry({ time: new Date(START + i * 60_000).toISOString(), id: `e${i}`, model: i === 10 ? 'Rare' : 'A' }));
    await w.flush();
    await open().query();
    // An index written by a version without blocks (or extended by one) is rebuilt, not trusted.
    const stale = await indexJson();
    await fsp.writeFile(path.join(dir, '.ledger-index', `${MARCH}.json`), JSON.stringify({ ...stale, blocks: undefined }));
    const file = path.join(dir, MARCH);
    const torn = '{"time":"2025-03-19T00:00:00.000Z","id":"torn","model":"Ra';
    await fsp.appendFile(file, torn);
    const l = open();
    const rare: LedgerFilter = { model: 'Rare', from: null, to: null };
    assert.deepEqual(
      (await l.view(rare, 10)).entries.map((e) => e.id),
      ['e10'],
    );
    const { blocks, size } = await indexJson();
    const complete = (await fsp.stat(file)).size - torn.length;
    assert.equal(size, complete);
    assert.equal(blocks[blocks.length - 1].off + blocks[blocks.length - 1].len, complete, 'the blocks end at the last complete line');
    // The writer mends the torn line (it becomes a bad line) and appends after it.
    w.append(ledgerEntry({ time: new Date(START + 900 * 60_000).toISOString(), id: 'after', model: 'Rare' }));
    await w.flush();
    assert.deepEqual(
      (await l.view(rare, 10)).entries.map((e) => e.id),
      ['e10', 'after'],
    );
    assert.deepEqual(
      (await open().view(rare, 10)).entries.map((e) => e.id),
      ['e10', 'after'],
    );
  });
});
