/**
 * Closed months in pieces: written with their index when compressed, still one valid gzip file,
 * read back in time order; filters and pages decompress only the pieces that can match; an
 * old-format month reads the same and is rewritten in pieces in the background; damage in one piece
 * loses only that piece; the proxy's start-up seed comes from the index and the end of the live file.
 */
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Ledger, LedgerEntry, LedgerFilter, LedgerOptions, localDay } from '../../src/core/store/ledger';
import { orderKey, PIECE_LINES, PieceText, type Piece } from '../../src/core/store/ledgerPieces';
import { MAX_LINE_BYTES } from '../../src/core/store/ledgerFiles';
import type { Logger } from '../../src/core/log';
import { ledgerEntry } from '../support/ledgerFixtures';

const JAN = 'ledger-2025-01.jsonl.gz';

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const none = (): void => undefined;
  return { warnings, trace: none, debug: none, info: none, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(m) };
}

/** January 2025 in time order: a busy model, a second one and a rare one (1 in 500), two clients. */
function january(count: number): LedgerEntry[] {
  const start = Date.parse('2025-01-01T00:00:00Z');
  const step = Math.floor((31 * 86_400_000) / count);
  return Array.from({ length: count }, (_, i) =>
    ledgerEntry({
      time: new Date(start + i * step).toISOString(),
      id: `e${i}`,
      model: i % 500 === 0 ? 'Rare' : i % 3 === 0 ? 'B' : 'A',
      client: i % 2 === 0 ? 'cline' : 'aider',
      points: 1 + (i % 7),
    }),
  );
}

const matches = (f: LedgerFilter, e: LedgerEntry): boolean =>
  (f.model === null || e.model === f.model) &&
  (f.from === null || localDay(new Date(e.time)) >= f.from) &&
  (f.to === null || localDay(new Date(e.time)) <= f.to);

describe('Ledger months in pieces', () => {
  let dir: string;
  let now: number;
  const open = (over: Partial<LedgerOptions> = {}): Ledger => new Ledger({ dir, now: () => now, retentionMonths: 0, ...over });
  const pieces = async (name = JAN): Promise<Piece[]> => JSON.parse(await fsp.readFile(path.join(dir, '.ledger-index', `${name}.json`), 'utf8')).pieces;

  /** Writes `entries` as the live files of their months, then lets the ledger close and compress them. */
  async function writeAndClose(entries: LedgerEntry[]): Promise<Ledger> {
    now = Date.parse('2025-01-31T00:00:00Z');
    const writer = open();
    for (const e of entries) writer.append(e);
    await writer.flush();
    now = Date.parse('2025-03-20T12:00:00Z');
    await writer.maintain();
    return open();
  }

  /** Counts the opens of `name` (a piece read opens the file once). */
  async function countOpens<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; opens: number }> {
    const real = fsp.open;
    let opens = 0;
    fsp.open = ((file: Parameters<typeof real>[0], ...rest: unknown[]) => {
      if (String(file).endsWith(name)) opens++;
      return (real as (...a: unknown[]) => ReturnType<typeof real>)(file, ...rest);
    }) as typeof real;
    try {
      return { value: await fn(), opens };
    } finally {
      fsp.open = real;
    }
  }

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-pieces-'));
  });

  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('compresses a month into pieces per model with its index; any gunzip reads it whole; read back in time order (round trip)', async () => {
    const entries = january(3 * PIECE_LINES + 500);
    now = Date.parse('2025-01-31T00:00:00Z');
    const writer = open();
    for (const e of entries) writer.append(e);
    await writer.flush();
    const before = await writer.query();
    now = Date.parse('2025-03-20T12:00:00Z');
    await writer.maintain();
    assert.deepEqual(
      (await fsp.readdir(dir)).filter((n) => n.startsWith('ledger-')),
      [JAN],
    );
    const ps = await pieces();
    const byModel = (m: string): Piece[] => ps.filter((p) => p.model === m);
    assert.ok(
      ps.every((p) => p.kind === 'entries' && p.lines <= PIECE_LINES),
      'entries only, none larger than a piece',
    );
    assert.deepEqual(
      ['A', 'B', 'Rare'].map((m) => byModel(m).reduce((n, p) => n + p.lines, 0)),
      ['A', 'B', 'Rare'].map((m) => entries.filter((e) => e.model === m).length),
      'each model in pieces of its own',
    );
    assert.ok(byModel('A').length >= 2);
    // Concatenated gzip members: one valid gzip file holding every line once.
    const whole = gunzipSync(await fsp.readFile(path.join(dir, JAN)))
      .toString()
      .split('\n')
      .filter(Boolean);
    assert.deepEqual(whole.sort(), entries.map((e) => JSON.stringify(e)).sort());
    // A new process reads the month back in time order, with the same totals, from the index written at compression.
    const reader = open();
    assert.deepEqual(
      (await reader.read()).map((e) => e.id),
      entries.map((e) => e.id),
    );
    assert.deepEqual(await reader.query(), before);
    const view = await reader.view({ model: null, from: null, to: null }, 50);
    assert.deepEqual(
      view.entries.map((e) => e.id),
      entries.slice(-50).map((e) => e.id),
    );
    assert.equal(view.hasMore, true);
  });

  it('a filter decompresses only the pieces that can hold a match (pieces opened are counted)', async () => {
    const entries = january(4 * PIECE_LINES);
    const reader = await writeAndClose(entries);
    const total = (await pieces()).length;
    await reader.query(); // indexes loaded: what follows is the filter's own reading
    const rare: LedgerFilter = { model: 'Rare', from: null, to: null };
    const r = await countOpens(JAN, () => reader.view(rare, 100));
    assert.deepEqual(
      r.value.entries.map((e) => e.id),
      entries.filter((e) => matches(rare, e)).map((e) => e.id),
    );
    assert.equal(r.opens, 1, `one piece of ${total} read for the rare model`);
    const day: LedgerFilter = { model: null, from: localDay(new Date('2025-01-16T12:00:00Z')), to: localDay(new Date('2025-01-16T12:00:00Z')) };
    const d = await countOpens(JAN, () => reader.view(day, 10_000));
    assert.deepEqual(
      d.value.entries.map((e) => e.id),
      entries.filter((e) => matches(day, e)).map((e) => e.id),
    );
    assert.ok(d.opens > 0 && d.opens <= 4, `${d.opens} of ${total} pieces read for one day`);
    assert.ok(total >= 6);
  });

  it('pages back through a pieced month in time order, with and without a filter, and exports it oldest first', async () => {
    const entries = january(2 * PIECE_LINES + 300);
    const reader = await writeAndClose(entries);
    for (const filter of [
      { model: null, from: null, to: null },
      { model: 'B', from: null, to: null },
    ] as LedgerFilter[]) {
      const want = entries.filter((e) => matches(filter, e)).map((e) => e.id);
      let page: { entries: LedgerEntry[]; hasMore: boolean } = await reader.view(filter, 333);
      const got = page.entries.map((e) => e.id);
      while (page.hasMore) {
        const oldest = page.entries[0];
        page = await reader.pageBefore(filter, { time: oldest.time, id: oldest.id }, 333);
        got.unshift(...page.entries.map((e) => e.id));
      }
      assert.deepEqual(got, want, `paged ${filter.model ?? 'everything'}`);
    }
    const chunks: string[] = [];
    const { Writable } = await import('node:stream');
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    assert.equal(await reader.exportCsv({ model: 'A', from: null, to: null }, out), entries.filter((e) => e.model === 'A').length);
    const ids = chunks
      .join('')
      .split('\r\n')
      .slice(1, -1)
      .map((row) => row.split(',')[1]);
    assert.deepEqual(
      ids,
      entries.filter((e) => e.model === 'A').map((e) => e.id),
    );
  });

  it('a piece decodes its lines on demand, keys writer-shaped entries off their bytes, skips oversized lines and can be released', () => {
    const lines = [
      JSON.stringify(ledgerEntry({ time: '2026-01-05T10:00:00.000Z', id: 'chatcmpl-é1', model: 'A' })),
      JSON.stringify({ model: 'A', time: '2026-01-05T10:00:01.000Z', id: 'reordered' }), // another shape: no quick key
      JSON.stringify(ledgerEntry({ time: '2026-01-05T10:00:02.000Z', id: 'esc\\aped', model: 'A' })), // an escape: no quick key
      'x'.repeat(MAX_LINE_BYTES + 1),
      JSON.stringify(ledgerEntry({ time: 'not a time', id: 'untimed', model: 'A' })),
      '',
      '{"last":"line without a newline"}',
    ];
    const piece = PieceText.of(Buffer.from(lines.join('\n'), 'utf8'), 40);
    assert.equal(piece.lines, lines.length);
    assert.equal(piece.line(0), lines[0]);
    assert.equal(piece.lineNo(0), 41);
    assert.equal(piece.line(3), undefined, 'a line longer than MAX_LINE_BYTES is skipped, as in a plain file');
    assert.equal(piece.line(5), '');
    assert.equal(piece.line(6), lines[6]);
    assert.equal(piece.quickOrderKey(0), orderKey('2026-01-05T10:00:00.000Z', 'chatcmpl-é1'));
    assert.equal(piece.quickOrderKey(1), undefined);
    assert.equal(piece.quickOrderKey(2), undefined);
    assert.equal(piece.quickOrderKey(3), undefined);
    assert.equal(piece.quickOrderKey(4), orderKey('not a time', 'untimed'));
    const big = PieceText.of(Buffer.from(`${lines[0]}\n`.repeat(200), 'utf8'), 0);
    big.release();
    assert.equal(big.lines, 0, 'a released piece holds nothing');
  });

  it('reads an old-format month (one gzip member) the same, and rewrites it in pieces in the background', async () => {
    const entries = january(2 * PIECE_LINES);
    await fsp.writeFile(path.join(dir, JAN), gzipSync(entries.map((e) => `${JSON.stringify(e)}\n`).join('')));
    now = Date.parse('2025-03-20T12:00:00Z');
    const l = open();
    const filter: LedgerFilter = { model: 'B', from: null, to: null };
    const first = await l.view(filter, 100);
    assert.deepEqual(
      first.entries.map((e) => e.id),
      entries
        .filter((e) => e.model === 'B')
        .slice(-100)
        .map((e) => e.id),
    );
    await l.flush(); // the rewrite in pieces, started by the first read, has finished
    assert.ok((await pieces()).length > 2, 'rewritten in pieces');
    const again = open();
    assert.deepEqual(await again.view(filter, 100), first);
    assert.deepEqual(
      (await again.read()).map((e) => e.id),
      entries.map((e) => e.id),
    );
  });

  it('leaves an old month that cannot be read to its end as it is; one with junk lines keeps them in its pieces', async () => {
    const good = (id: string): string => `${JSON.stringify(ledgerEntry({ time: '2025-01-10T00:00:00.000Z', id }))}\n`;
    await fsp.writeFile(path.join(dir, JAN), gzipSync(good('a') + 'junk\n' + good('b')));
    const whole = gzipSync(Buffer.from(good('c') + good('d') + 'x'.repeat(100_000)));
    const truncated = whole.subarray(0, whole.length - 40);
    await fsp.writeFile(path.join(dir, 'ledger-2025-02.jsonl.gz'), truncated);
    now = Date.parse('2025-03-20T12:00:00Z');
    const l = open();
    assert.equal((await l.query()).totals.requests, 4);
    await l.flush();
    assert.deepEqual(await fsp.readFile(path.join(dir, 'ledger-2025-02.jsonl.gz')), truncated, 'the damaged month is untouched');
    assert.deepEqual(
      (await pieces()).map((p) => [p.kind, p.lines]),
      [
        ['entries', 2],
        ['other', 1],
      ],
    );
    assert.equal(gunzipSync(await fsp.readFile(path.join(dir, JAN))).toString(), `${good('a')}${good('b')}junk\n`);
    assert.deepEqual(
      (await open().read()).map((e) => e.id),
      ['a', 'b', 'c', 'd'],
    );
  });

  it('damage in one piece skips only that piece, with one warning naming the file and line', async () => {
    const entries = january(3 * PIECE_LINES);
    await writeAndClose(entries);
    const ps = await pieces();
    const victim = ps.find((p) => p.model === 'A')!;
    const file = path.join(dir, JAN);
    const fh = await fsp.open(file, 'r+');
    await fh.write(Buffer.alloc(40, 0xff), 0, 40, victim.off + Math.floor(victim.len / 2));
    await fh.close();
    const logger = recordingLogger();
    const l = open({ logger });
    // The first A piece holds the first A entries.
    const lost = new Set(
      entries
        .filter((e) => e.model === 'A')
        .slice(0, victim.lines)
        .map((e) => e.id),
    );
    const read = (await l.read()).map((e) => e.id);
    assert.deepEqual(
      read,
      entries.map((e) => e.id).filter((id) => !lost.has(id)),
    );
    await l.read();
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'));
    assert.match(logger.warnings[0], new RegExp(`line ${victim.line + 1} of .*${JAN.replace(/\./g, '\\.')}`));
    // The file changed: its totals are counted again, without the lost piece.
    assert.equal((await l.query()).totals.requests, read.length);
  });

  it('seeds the budgets from the index and the estimates from the end of the live file, without what came after the start', async () => {
    now = Date.parse('2025-03-20T12:00:00Z');
    const l = open();
    const day1 = '2025-03-02T12:00:00.000Z';
    const old = Array.from({ length: 50 }, (_, i) => ledgerEntry({ time: day1, id: `old${i}`, points: 2 }));
    const recent = ledgerEntry({ time: '2025-03-20T10:00:00.000Z', id: 'est', points: 30, pointsEstimated: true });
    const fixed = ledgerEntry({ time: '2025-03-20T10:30:00.000Z', id: 'fixed', points: 40, pointsEstimated: true });
    const actual = ledgerEntry({ time: '2025-03-20T11:00:00.000Z', id: 'actual', points: 5 });
    const after = ledgerEntry({ time: '2025-03-20T12:00:01.000Z', id: 'after', points: 1000 });
    for (const e of [...old, recent, fixed, actual]) l.append(e);
    l.appendCorrection({ id: 'fixed', time: fixed.time, points: 45, estimate: 40, queryId: 'q1', at: '2025-03-20T10:31:00.000Z' });
    l.append(after);
    await l.flush();
    const seed = await open().startupSeed({ fromDay: '2025-03-01', recentSince: new Date(now - 6 * 3_600_000), before: new Date(now) });
    const expected = new Map<string, number>([[localDay(new Date(day1)), 100]]);
    for (const e of [recent, { ...fixed, points: 45 }, actual])
      expected.set(localDay(new Date(e.time)), (expected.get(localDay(new Date(e.time))) ?? 0) + e.points!);
    assert.deepEqual(
      seed.days,
      [...expected].sort().map(([day, points]) => ({ day, points })),
    );
    assert.deepEqual(
      seed.recent.map((e) => [e.id, e.points, e.pointsEstimated]),
      [
        ['est', 30, true],
        ['fixed', 45, false],
      ],
    );
  });
});
