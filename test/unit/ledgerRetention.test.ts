/**
 * The ledger's month files: rotation by month, gzip of closed months (read back transparently),
 * deletion by retention only, migration of the old size-rotated files, crash recovery of a
 * compression, corruption skipped line by line, and refused requests counted per minute.
 */
import * as assert from 'node:assert/strict';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Ledger, LedgerEntry, LedgerOptions } from '../../src/core/store/ledger';
import { withDirLock } from '../../src/core/store/ledgerFiles';
import type { Logger } from '../../src/core/log';
import { ledgerEntry } from '../support/ledgerFixtures';
import { waitFor } from '../support/wait';

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, trace: rec('trace'), debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

const at = (iso: string, id: string, over: Partial<LedgerEntry> = {}): LedgerEntry => ledgerEntry({ time: iso, id, ...over });
const line = (e: LedgerEntry): string => `${JSON.stringify(e)}\n`;

describe('Ledger month files', () => {
  let dir: string;
  let now: number;
  const open = (over: Partial<LedgerOptions> = {}): Ledger => new Ledger({ dir, now: () => now, ...over });
  const names = async (): Promise<string[]> => (await fsp.readdir(dir)).filter((n) => n.startsWith('ledger')).sort();
  const ids = async (l: Ledger): Promise<string[]> => (await l.read()).map((e) => e.id);

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-months-'));
    now = Date.parse('2025-03-20T12:00:00Z');
  });

  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('writes each entry to the file of its month and reads all months back in order', async () => {
    const l = open();
    l.append(at('2025-01-31T23:59:59.000Z', 'jan'));
    l.append(at('2025-02-01T00:00:00.000Z', 'feb'));
    l.append(at('2025-03-01T00:00:00.000Z', 'mar'));
    await l.flush();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl.gz', 'ledger-2025-03.jsonl'], 'closed months compressed');
    assert.deepEqual(await ids(l), ['jan', 'feb', 'mar']);
  });

  it('compresses closed months after the grace period and reads them back (round trip)', async () => {
    now = Date.parse('2025-02-20T00:00:00Z');
    const l = open({ retentionMonths: 0 });
    const entries = [at('2025-01-10T00:00:00.000Z', 'a'), at('2025-02-10T00:00:00.000Z', 'b'), at('2025-03-10T00:00:00.000Z', 'c')];
    for (const e of entries) l.append(e);
    await l.flush();
    now = Date.parse('2025-03-01T00:30:00Z'); // February ended 30 minutes ago: still open for late writers
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl', 'ledger-2025-03.jsonl']);
    now = Date.parse('2025-03-20T00:00:00Z');
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl.gz', 'ledger-2025-03.jsonl']);
    assert.equal(gunzipSync(await fsp.readFile(path.join(dir, 'ledger-2025-01.jsonl.gz'))).toString(), line(entries[0]));
    assert.deepEqual(await l.read(), entries);
    // A late writer appends to a closed month: a new live file, read with it, folded in next time.
    l.append(at('2025-02-28T23:59:00.000Z', 'late'));
    await l.flush();
    assert.deepEqual(await ids(l), ['a', 'b', 'late', 'c']);
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl.gz', 'ledger-2025-03.jsonl']);
    assert.deepEqual(await ids(l), ['a', 'b', 'late', 'c']);
    const summary = await l.query();
    assert.equal(summary.totals.requests, 4);
  });

  it('deletes only months older than the retention, never by volume; 0 keeps everything', async () => {
    const l = open({ retentionMonths: 2 });
    for (const m of ['2024-11', '2024-12', '2025-01', '2025-02', '2025-03']) l.append(at(`${m}-15T00:00:00.000Z`, m, { points: 1000 }));
    // A flood in the current month does not push anything out.
    for (let i = 0; i < 2000; i++) l.append(at('2025-03-16T00:00:00.000Z', `flood-${i}`));
    await l.flush();
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl.gz', 'ledger-2025-03.jsonl']);
    assert.deepEqual((await ids(l)).slice(0, 3), ['2025-01', '2025-02', '2025-03']);
    const forever = open({ retentionMonths: 0 });
    forever.append(at('2001-01-01T00:00:00.000Z', 'ancient'));
    await forever.flush();
    await forever.maintain();
    assert.ok((await names()).includes('ledger-2001-01.jsonl.gz'));
  });

  it('migrates the old size-rotated files into month files without loss or duplicates', async () => {
    const old = [
      at('2025-01-05T00:00:00.000Z', 'o1'),
      at('2025-02-05T00:00:00.000Z', 'o2'),
      at('2025-02-06T00:00:00.000Z', 'o3'),
      at('2025-03-01T00:00:00.000Z', 'o4'),
    ];
    await fsp.writeFile(path.join(dir, 'ledger.2.jsonl'), line(old[0]));
    await fsp.writeFile(path.join(dir, 'ledger.1.jsonl'), line(old[1]) + line(old[2]));
    await fsp.writeFile(path.join(dir, 'ledger.jsonl'), line(old[3]));
    const l = open({ retentionMonths: 0 });
    assert.deepEqual(await ids(l), ['o1', 'o2', 'o3', 'o4'], 'readable before the migration');
    l.append(at('2025-03-02T00:00:00.000Z', 'new'));
    await l.flush();
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl.gz', 'ledger-2025-03.jsonl', 'ledger-2025-03.migrated.jsonl']);
    assert.deepEqual(await ids(l), ['o1', 'o2', 'o3', 'o4', 'new']);
    await l.maintain(); // idempotent
    assert.deepEqual(await ids(l), ['o1', 'o2', 'o3', 'o4', 'new']);
  });

  it('a migration interrupted after its journal finishes without duplicating the old files', async () => {
    await fsp.writeFile(path.join(dir, 'ledger.1.jsonl'), line(at('2025-03-01T00:00:00.000Z', 'x')));
    await fsp.writeFile(path.join(dir, 'ledger-2025-03.migrated.jsonl'), line(at('2025-03-01T00:00:00.000Z', 'x')));
    await fsp.writeFile(path.join(dir, 'ledger-migration.json'), '{"migrated":["ledger.1.jsonl"]}');
    const l = open();
    assert.deepEqual(await l.read({}), [at('2025-03-01T00:00:00.000Z', 'x')]);
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-03.migrated.jsonl']);
  });

  it('recovers an interrupted compression: undone before the rename, finished after it', async () => {
    const a = at('2025-01-05T00:00:00.000Z', 'a');
    // Crash before the rename: the temp file and journal exist, the sources are intact.
    await fsp.writeFile(path.join(dir, 'ledger-2025-01.jsonl.123.closing'), line(a));
    await fsp.writeFile(path.join(dir, 'ledger-2025-01.jsonl.gz.123.tmp'), gzipSync(line(a)));
    await fsp.writeFile(
      path.join(dir, 'ledger-2025-01.compress.json'),
      JSON.stringify({ tmp: 'ledger-2025-01.jsonl.gz.123.tmp', sources: ['ledger-2025-01.jsonl.123.closing'] }),
    );
    const l = open({ retentionMonths: 0 });
    assert.deepEqual(await ids(l), ['a']);
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz']);
    assert.deepEqual(await ids(l), ['a']);
    // Crash after the rename: the .gz holds the source, which is still there; readers skip it.
    const b = at('2025-02-05T00:00:00.000Z', 'b');
    await fsp.writeFile(path.join(dir, 'ledger-2025-02.jsonl.gz'), gzipSync(line(b)));
    await fsp.writeFile(path.join(dir, 'ledger-2025-02.migrated.jsonl'), line(b));
    await fsp.writeFile(
      path.join(dir, 'ledger-2025-02.compress.json'),
      JSON.stringify({ tmp: 'ledger-2025-02.jsonl.gz.9.tmp', sources: ['ledger-2025-02.migrated.jsonl'] }),
    );
    assert.deepEqual(await ids(l), ['a', 'b']);
    await l.maintain();
    assert.deepEqual(await names(), ['ledger-2025-01.jsonl.gz', 'ledger-2025-02.jsonl.gz']);
    assert.deepEqual(await ids(l), ['a', 'b']);
  });

  it('maintenance is skipped while another process holds the lock', async () => {
    now = Date.parse('2025-01-20T00:00:00Z');
    const l = open({ retentionMonths: 0 });
    l.append(at('2025-01-05T00:00:00.000Z', 'a'));
    await l.flush();
    now = Date.parse('2025-03-20T00:00:00Z');
    await withDirLock(dir, async () => {
      await l.maintain();
      assert.ok((await names()).includes('ledger-2025-01.jsonl'), 'not compressed under a foreign lock');
    });
    await l.maintain();
    assert.ok((await names()).includes('ledger-2025-01.jsonl.gz'));
  });

  const good = (id: string): string => line(at('2025-03-01T00:00:00.000Z', id));

  describe('corruption', () => {
    it('skips a torn line, binary junk and a 50 MB line in a plain file, one warning each naming file and line', async () => {
      const file = path.join(dir, 'ledger-2025-03.jsonl');
      const out = createWriteStream(file);
      out.write(good('a'));
      out.write('{"time":"2025-03-01T00:00:00.000Z","id":"torn","mo\n');
      out.write(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a]));
      out.write(good('b'));
      const mb = Buffer.alloc(1024 * 1024, 0x78);
      for (let i = 0; i < 50; i++) if (!out.write(mb)) await once(out, 'drain');
      out.write('\n');
      out.end(good('c'));
      await once(out, 'close');
      const logger = recordingLogger();
      const l = open({ logger });
      assert.deepEqual(await ids(l), ['a', 'b', 'c']);
      const warnings = logger.lines.filter((w) => w.startsWith('warn'));
      assert.deepEqual(
        warnings.map((w) => /line (\d+) of (\S+)/.exec(w)?.slice(1)),
        [
          ['2', file],
          ['3', file],
          ['5', file],
        ],
      );
      await ids(l);
      assert.equal(logger.lines.filter((w) => w.startsWith('warn')).length, 3, 'warned once, not at every read');
      assert.equal((await l.query()).totals.requests, 3);
    });

    it('skips damage inside a gzipped month and keeps what a truncated .gz still holds', async () => {
      const junk = Buffer.concat([
        Buffer.from(good('a')),
        Buffer.from('\u0000garbage\n'),
        Buffer.alloc(70 * 1024, 0x41),
        Buffer.from('\n'),
        Buffer.from(good('b')),
      ]);
      await fsp.writeFile(path.join(dir, 'ledger-2025-01.jsonl.gz'), gzipSync(junk));
      const whole = gzipSync(Buffer.from(good('c') + good('d') + 'x'.repeat(100_000)));
      await fsp.writeFile(path.join(dir, 'ledger-2025-02.jsonl.gz'), whole.subarray(0, whole.length - 40));
      const logger = recordingLogger();
      const l = open({ logger, retentionMonths: 0 });
      assert.deepEqual(await ids(l), ['a', 'b', 'c', 'd']);
      const warnings = logger.lines.filter((w) => w.startsWith('warn'));
      assert.ok(
        warnings.some((w) => w.includes('line 2 of') && w.includes('ledger-2025-01.jsonl.gz')),
        warnings.join('\n'),
      );
      assert.ok(
        warnings.some((w) => w.includes('line 3 of') && w.includes('ledger-2025-01.jsonl.gz')),
        warnings.join('\n'),
      );
      assert.ok(
        warnings.some((w) => w.includes('ledger-2025-02.jsonl.gz') && w.includes('unreadable')),
        warnings.join('\n'),
      );
    });
  });

  describe('refused requests', () => {
    it('writes one summary per minute, client and reason instead of a line per request', async () => {
      const l = open();
      for (let i = 0; i < 1240; i++)
        l.countRefused({ time: `2025-03-20T14:02:${String(i % 60).padStart(2, '0')}.000Z`, client: 'aider', reason: 'rate_limit' });
      l.countRefused({ time: '2025-03-20T14:03:10.000Z', client: 'aider', reason: 'rate_limit' });
      l.countRefused({ time: '2025-03-20T14:02:30.000Z', client: 'cline', reason: 'rate_limit' });
      l.countRefused({ time: '2025-03-20T14:02:31.000Z', client: 'aider', reason: 'paused' });
      l.append(at('2025-03-20T14:02:40.000Z', 'paid', { points: 500 }));
      await l.flush();
      const refused = await l.readRefused();
      assert.deepEqual(refused.map((r) => [r.client, r.reason, r.count, r.from, r.to]).sort(), [
        ['aider', 'paused', 1, '2025-03-20T14:02:31.000Z', '2025-03-20T14:02:31.000Z'],
        ['aider', 'rate_limit', 1, '2025-03-20T14:03:10.000Z', '2025-03-20T14:03:10.000Z'],
        ['aider', 'rate_limit', 1240, '2025-03-20T14:02:00.000Z', '2025-03-20T14:02:59.000Z'],
        ['cline', 'rate_limit', 1, '2025-03-20T14:02:30.000Z', '2025-03-20T14:02:30.000Z'],
      ]);
      assert.deepEqual(await ids(l), ['paid'], 'refusals are not entries');
      const view = await l.view({ model: null, from: null, to: null }, 100);
      assert.equal(view.refusedTotal, 1243);
      assert.equal(view.summary.totals.requests, 1);
    });

    it('writes a finished minute on its timer, without waiting for flush', async () => {
      const l = open({ refusedFlushMs: 10 });
      l.countRefused({ time: '2025-03-20T11:59:00.000Z', client: 'x', reason: 'gate' });
      const refused = await waitFor('the refused minute on disk', async () => {
        const r = await l.readRefused();
        return r.length > 0 && r;
      });
      assert.equal(refused.length, 1);
      assert.equal(refused[0].reason, 'gate');
      await l.close();
    });

    it('skips record kinds it does not know (a newer writer) without a warning', async () => {
      await fsp.writeFile(
        path.join(dir, 'ledger-2025-03.jsonl'),
        `${JSON.stringify({ kind: 'correction', id: 'a', points: 5, time: '2025-03-01T00:00:00.000Z' })}\n${good('a')}`,
      );
      const logger = recordingLogger();
      const l = open({ logger });
      assert.deepEqual(await ids(l), ['a']);
      assert.equal(logger.lines.filter((w) => w.startsWith('warn')).length, 0);
    });
  });
});
