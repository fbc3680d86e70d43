import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sinon from 'sinon';
import { csvField, Ledger, LedgerEntry, LedgerOptions, localDay, parseLedgerText, toCsv } from '../../src/core/store/ledger';
import type { Logger } from '../../src/core/log';
import { ledgerEntry } from '../support/ledgerFixtures';

const entry = (over: Partial<LedgerEntry> = {}): LedgerEntry => ledgerEntry({ id: 'req-0000', ...over });

/** Fixed-width ids so every line has the same byte length. */
const idOf = (i: number): string => `req-${String(i).padStart(4, '0')}`;

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, trace: rec('trace'), debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

describe('Ledger', () => {
  let tmp: string;
  let dir: string;

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-test-'));
    dir = path.join(tmp, 'nested', 'data');
  });

  afterEach(async () => {
    sinon.restore();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  /** The fixture entries' month is the current one, so nothing is compressed or deleted under them. */
  const NOW = Date.parse('2025-03-15T00:00:00.000Z');
  const LIVE = 'ledger-2025-03.jsonl';
  const open = (over: Partial<LedgerOptions> = {}): Ledger => new Ledger({ dir, now: () => NOW, ...over });
  const readLines = async (name: string): Promise<string[]> => (await fsp.readFile(path.join(dir, name), 'utf8')).split('\n').filter((l) => l.length > 0);
  it('creates the directory, writes JSONL and reads it back oldest first', async () => {
    const ledger = open();
    ledger.append(entry({ id: 'a', points: 1 }));
    ledger.append(entry({ id: 'b', points: null, error: 'boom' }));
    await ledger.flush();
    const lines = await readLines(LIVE);
    assert.equal(lines.length, 2);
    assert.equal(JSON.parse(lines[0]).id, 'a');
    const read = await ledger.read();
    assert.deepEqual(
      read.map((e) => [e.id, e.points, e.error]),
      [
        ['a', 1, undefined],
        ['b', null, 'boom'],
      ],
    );
    assert.deepEqual(read[0], entry({ id: 'a', points: 1 }));
  });

  it('writes only the known fields (no prompt text) and truncates long errors', async () => {
    const ledger = open();
    const withExtra = { ...entry({ error: 'x'.repeat(2000) }), prompt: 'secret prompt', messages: [{ content: 'hi' }] };
    ledger.append(withExtra as LedgerEntry);
    await ledger.flush();
    const raw = await fsp.readFile(path.join(dir, LIVE), 'utf8');
    assert.ok(!raw.includes('secret prompt'));
    assert.ok(!raw.includes('messages'));
    const [e] = await ledger.read();
    assert.equal(e.error?.length, 501);
  });

  describe('crash tolerance', () => {
    it('skips a torn last line and starts the next append on a fresh line', async () => {
      await fsp.mkdir(dir, { recursive: true });
      const good = JSON.stringify(entry({ id: 'good' }));
      await fsp.writeFile(path.join(dir, LIVE), `${good}\n{"time":"2025-03-01T12:00:00.000Z","id":"torn","mo`);
      const logger = recordingLogger();
      const ledger = open({ logger });
      assert.deepEqual(
        (await ledger.read()).map((e) => e.id),
        ['good'],
      );
      ledger.append(entry({ id: 'after' }));
      await ledger.flush();
      const raw = await fsp.readFile(path.join(dir, LIVE), 'utf8');
      const lines = raw.split('\n');
      assert.equal(lines.length, 4); // good, torn, after, '' (trailing newline)
      assert.equal(lines[1], '{"time":"2025-03-01T12:00:00.000Z","id":"torn","mo');
      assert.equal(JSON.parse(lines[2]).id, 'after');
      assert.deepEqual(
        (await ledger.read()).map((e) => e.id),
        ['good', 'after'],
      );
      assert.ok(logger.lines.some((l) => l.startsWith('warn') && l.includes('incomplete line')));
    });

    it('adds no blank line when the file ends cleanly', async () => {
      await fsp.mkdir(dir, { recursive: true });
      const good = JSON.stringify(entry({ id: 'good' }));
      await fsp.writeFile(path.join(dir, LIVE), `${good}\n`);
      const ledger = open();
      ledger.append(entry({ id: 'after' }));
      await ledger.flush();
      const raw = await fsp.readFile(path.join(dir, LIVE), 'utf8');
      assert.equal(raw, `${good}\n${JSON.stringify(entry({ id: 'after' }))}\n`);
    });

    it('skips garbage, blank and foreign lines anywhere', () => {
      const text = [JSON.stringify(entry({ id: 'a' })), 'not json', '', '[1,2]', '{"foo":1}', '  ', JSON.stringify(entry({ id: 'b' }))].join('\n');
      assert.deepEqual(
        parseLedgerText(text).map((e) => e.id),
        ['a', 'b'],
      );
    });

    it('never throws from append when the directory cannot be created, and logs', async () => {
      const blocker = path.join(tmp, 'file');
      await fsp.writeFile(blocker, 'x');
      const logger = recordingLogger();
      const ledger = open({ dir: path.join(blocker, 'sub'), logger });
      const seen: string[] = [];
      ledger.onDidAppend((e) => seen.push(e.id));
      assert.doesNotThrow(() => ledger.append(entry({ id: 'x' })));
      await ledger.flush();
      assert.ok(logger.lines.some((l) => l.startsWith('error') && l.includes('could not write 1 line')));
      assert.deepEqual(await ledger.read(), []);
      assert.deepEqual(seen, ['x']);
    });
  });

  it('fires onDidAppend in order after the write, and stops after dispose', async () => {
    const ledger = open();
    const seen: Array<[string, number]> = [];
    const sub = ledger.onDidAppend((e) => {
      seen.push([e.id, seen.length]);
    });
    ledger.onDidAppend(() => {
      throw new Error('bad listener');
    });
    ledger.append(entry({ id: 'a' }));
    ledger.append(entry({ id: 'b' }));
    assert.equal(seen.length, 0); // not synchronous
    await ledger.flush();
    assert.deepEqual(seen, [
      ['a', 0],
      ['b', 1],
    ]);
    sub.dispose();
    ledger.append(entry({ id: 'c' }));
    await ledger.flush();
    assert.equal(seen.length, 2);
  });

  describe('read filters', () => {
    it('filters by since (inclusive), until (exclusive), model and limit (newest kept)', async () => {
      const ledger = open();
      const times = ['2025-03-01T00:00:00.000Z', '2025-03-02T00:00:00.000Z', '2025-03-03T00:00:00.000Z', '2025-03-04T00:00:00.000Z'];
      times.forEach((time, i) => ledger.append(entry({ id: idOf(i), time, model: i % 2 === 0 ? 'A' : 'B' })));
      const ids = async (o: Parameters<Ledger['read']>[0]) => (await ledger.read(o)).map((e) => e.id);
      assert.deepEqual(await ids({ since: new Date(times[1]) }), [idOf(1), idOf(2), idOf(3)]);
      assert.deepEqual(await ids({ until: new Date(times[2]) }), [idOf(0), idOf(1)]);
      assert.deepEqual(await ids({ since: new Date(times[1]), until: new Date(times[3]) }), [idOf(1), idOf(2)]);
      assert.deepEqual(await ids({ model: 'A' }), [idOf(0), idOf(2)]);
      assert.deepEqual(await ids({ limit: 3 }), [idOf(1), idOf(2), idOf(3)]);
      assert.deepEqual(await ids({ limit: 1, model: 'A' }), [idOf(2)]);
      assert.deepEqual(await ids({ limit: 0 }), []);
    });

    it('returns [] when nothing was written yet', async () => {
      const ledger = open();
      assert.deepEqual(await ledger.read(), []);
      const s = await ledger.query();
      assert.deepEqual(s.totals, { requests: 0, points: 0, tokensIn: 0, tokensOut: 0, estimatedPoints: 0 });
    });
  });

  it('query totals by local day and by model', async () => {
    const ledger = open();
    const at = (d: number, h: number) => new Date(2025, 0, d, h, 30).toISOString();
    ledger.append(entry({ time: at(1, 0), model: 'GPT-4.1', points: 10, tokensIn: 100, tokensOut: 10 }));
    ledger.append(entry({ time: at(1, 23), model: 'Claude', points: 30, pointsEstimated: true, tokensIn: 200, tokensOut: 20 }));
    ledger.append(entry({ time: at(2, 0), model: 'GPT-4.1', points: null, status: 'error', tokensIn: 5, tokensOut: 0 }));
    ledger.append(entry({ time: at(3, 12), model: 'Claude', points: 7, tokensIn: 1, tokensOut: 2 }));
    const s = await ledger.query();
    assert.deepEqual(s.totals, { requests: 4, points: 47, tokensIn: 306, tokensOut: 32, estimatedPoints: 30 });
    assert.deepEqual(s.byDay, [
      { day: '2025-01-01', requests: 2, points: 40, tokensIn: 300, tokensOut: 30 },
      { day: '2025-01-02', requests: 1, points: 0, tokensIn: 5, tokensOut: 0 },
      { day: '2025-01-03', requests: 1, points: 7, tokensIn: 1, tokensOut: 2 },
    ]);
    assert.deepEqual(s.byModel, [
      { model: 'Claude', requests: 2, points: 37, tokensIn: 201, tokensOut: 22 },
      { model: 'GPT-4.1', requests: 2, points: 10, tokensIn: 105, tokensOut: 10 },
    ]);
    const filtered = await ledger.query({ model: 'Claude', from: '2025-01-02', to: null });
    assert.deepEqual(filtered.totals, { requests: 1, points: 7, tokensIn: 1, tokensOut: 2, estimatedPoints: 0 });
    assert.equal(localDay(new Date(2025, 11, 31, 23, 59)), '2025-12-31');
  });

  it('buckets days in local time, not UTC', async () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Asia/Tokyo'; // UTC+9, no DST
    try {
      const ledger = open();
      ledger.append(entry({ time: '2025-01-01T14:00:00.000Z', points: 1 })); // 23:00 local, Jan 1
      ledger.append(entry({ time: '2025-01-01T16:00:00.000Z', points: 2 })); // 01:00 local, Jan 2
      const s = await ledger.query();
      assert.deepEqual(
        s.byDay.map((d) => [d.day, d.points]),
        [
          ['2025-01-01', 1],
          ['2025-01-02', 2],
        ],
      );
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('csvField writes every number as JavaScript prints it', () => {
    for (const n of [0, -0, 7, -12, 1234567890123, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5, -0.25, 1e21, 2 ** 60, NaN, Infinity]) {
      assert.equal(csvField(n), String(n), String(n));
    }
  });

  it('toCsv quotes commas, quotes and newlines, empties nulls and defuses formulas', () => {
    const csv = toCsv([
      entry({ id: 'plain', points: null, balanceAfter: null }),
      entry({ id: 'a,b', client: 'say "hi"', error: 'line1\nline2', pointsEstimated: true }),
      entry({ id: 'f', client: '=HYPERLINK("x")', error: '@cmd' }),
    ]);
    const rows = csv.split('\r\n');
    assert.equal(
      rows[0],
      'time,id,model,endpoint,stream,status,httpStatus,tokensIn,tokensOut,points,pointsEstimated,balanceAfter,durationMs,clipped,retries,client,replacedEstimate,error',
    );
    assert.equal(rows[1], '2025-03-01T12:00:00.000Z,plain,GPT-4.1,chat,true,ok,200,100,50,,false,,1234,false,0,cline,,');
    assert.equal(rows[2], '2025-03-01T12:00:00.000Z,"a,b",GPT-4.1,chat,true,ok,200,100,50,10,true,990,1234,false,0,"say ""hi""",,"line1\nline2"');
    assert.equal(rows[3], `2025-03-01T12:00:00.000Z,f,GPT-4.1,chat,true,ok,200,100,50,10,false,990,1234,false,0,"'=HYPERLINK(""x"")",,'@cmd`);
    assert.equal(rows[4], '');
    assert.equal(rows.length, 5);
  });
});
