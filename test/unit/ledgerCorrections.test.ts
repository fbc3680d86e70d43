import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { correctionLine, Ledger, parseLedgerText, summarize, toCsv } from '../../src/core/store/ledger';
import { ledgerEntry } from '../support/ledgerFixtures';
import { exportHistoryCsv } from '../../src/vscode/historyData';

describe('Ledger corrections', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'poe-ledger-corr-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const correction = (over: Record<string, unknown> = {}) => ({
    id: 'req-1',
    time: '2025-03-01T12:00:00.000Z',
    points: 42,
    estimate: 10,
    queryId: 'q1',
    at: '2025-03-01T12:05:00.000Z',
    ...over,
  });

  it('appends a correction record and applies it on read: actual points, the replaced estimate, the query id', async () => {
    const ledger = new Ledger({ dir, retentionMonths: 0, now: () => Date.parse('2025-03-15T00:00:00Z') });
    ledger.append(ledgerEntry({ id: 'req-1', points: 10, pointsEstimated: true }));
    ledger.append(ledgerEntry({ id: 'req-2', points: 10, pointsEstimated: true }));
    ledger.appendCorrection(correction());
    await ledger.flush();
    const lines = readFileSync(path.join(dir, 'ledger-2025-03.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 3, 'append-only: the entry line is not rewritten');
    assert.equal(JSON.parse(lines[0]).points, 10);
    const [a, b] = await ledger.read();
    assert.deepEqual([a.points, a.pointsEstimated, a.replacedEstimate, a.queryId], [42, false, 10, 'q1']);
    assert.deepEqual([b.points, b.pointsEstimated, b.replacedEstimate], [10, true, undefined]);
    const s = summarize([a, b]);
    assert.equal(s.totals.points, 52);
    assert.equal(s.totals.estimatedPoints, 10);
    assert.match(toCsv([a]).split('\r\n')[1], /,42,false,.*,10,/);
  });

  it('matches by id and time, applies only the first correction of an entry, and never to an actual one', () => {
    const text = [
      JSON.stringify(ledgerEntry({ id: 'dup', time: '2025-03-01T12:00:00.000Z', points: 10, pointsEstimated: true })),
      JSON.stringify(ledgerEntry({ id: 'dup', time: '2025-03-01T13:00:00.000Z', points: 10, pointsEstimated: true })),
      JSON.stringify(ledgerEntry({ id: 'real', points: 5 })),
      JSON.stringify({ type: 'correction', ...correction({ id: 'dup', time: '2025-03-01T13:00:00.000Z', points: 70 }) }),
      JSON.stringify({ type: 'correction', ...correction({ id: 'dup', time: '2025-03-01T13:00:00.000Z', points: 99, queryId: 'q2' }) }),
      JSON.stringify({ type: 'correction', ...correction({ id: 'real', points: 500 }) }),
      '{"type":"correction","id":"dup","time":"2025-03-01T12:00:00.000Z","points":-5}',
    ].join('\n');
    const corrections = new Map();
    const entries = parseLedgerText(text, corrections);
    assert.equal(entries.length, 3, 'correction lines are not entries (older readers skip them too)');
    assert.equal(parseLedgerText(text).length, 3);
    return (async () => {
      const ledger = new Ledger({ dir, retentionMonths: 0 });
      writeFileSync(path.join(dir, 'ledger-2025-03.jsonl'), `${text}\n`);
      const read = await ledger.read();
      assert.deepEqual(
        read.map((e) => [e.id, e.points, e.pointsEstimated]),
        [
          ['dup', 10, true],
          ['dup', 70, false],
          ['real', 5, false],
        ],
      );
    })();
  });

  it('finds a correction written after its month was compressed (entry in the .gz, correction in a new file): rows and CSV at once, totals once folded in', async () => {
    let now = Date.parse('2025-03-10T00:00:00Z');
    const ledger = new Ledger({ dir, retentionMonths: 0, now: () => now });
    ledger.append(ledgerEntry({ id: 'old', points: 10, pointsEstimated: true }));
    for (let i = 0; i < 3; i++) ledger.append(ledgerEntry({ id: `filler-${i}` }));
    await ledger.flush();
    now = Date.parse('2025-05-01T00:00:00Z');
    await ledger.maintain();
    assert.ok(readdirSync(dir).includes('ledger-2025-03.jsonl.gz'), 'the entry went into the compressed month');
    // Another process books the correction before anyone folds it in: a new file of that month.
    writeFileSync(path.join(dir, 'ledger-2025-03.jsonl'), correctionLine(correction({ id: 'old' })));
    const reader = new Ledger({ dir, retentionMonths: 0, now: () => Date.parse('2025-03-31T12:00:00Z') }); // March still open: nothing folds
    const read = await reader.read();
    assert.equal(read.find((e) => e.id === 'old')?.points, 42);
    assert.equal((await reader.read({ limit: 2 })).length, 2);
    // The index of a closed month keeps no estimates waiting: its totals take the late correction
    // once the next compression folds it in (below); rows, read() and the CSV have it at once.
    assert.equal((await reader.query()).totals.points, 4 * 10);
    const view = await reader.view({ model: null, from: null, to: null }, 10);
    assert.deepEqual(view.entries.find((e) => e.id === 'old')?.points, 42);
    assert.deepEqual(
      readdirSync(dir)
        .filter((n) => n.startsWith('ledger-'))
        .sort(),
      ['ledger-2025-03.jsonl', 'ledger-2025-03.jsonl.gz'],
    );
    const csvFile = path.join(dir, 'out.csv');
    await exportHistoryCsv(reader, { model: null, from: null, to: null }, csvFile);
    assert.match(readFileSync(csvFile, 'utf8'), /,old,.*,42,false,.*,10,/);
    // Folded into the .gz by the next compression, the correction still applies (now in one file).
    await ledger.maintain();
    assert.deepEqual(
      readdirSync(dir)
        .filter((n) => n.startsWith('ledger-'))
        .sort(),
      ['ledger-2025-03.jsonl.gz'],
    );
    const totals = await ledger.query();
    assert.equal(totals.totals.points, 42 + 3 * 10);
    assert.equal(totals.totals.estimatedPoints, 0);
    assert.equal((await ledger.read()).find((e) => e.id === 'old')?.points, 42);
  });

  it('corrects the totals of an estimate migrated from the old files by a correction in the live file', async () => {
    writeFileSync(path.join(dir, 'ledger-2025-03.migrated.jsonl'), `${JSON.stringify(ledgerEntry({ id: 'req-1', points: 10, pointsEstimated: true }))}\n`);
    writeFileSync(path.join(dir, 'ledger-2025-03.jsonl'), correctionLine(correction()));
    const ledger = new Ledger({ dir, retentionMonths: 0, now: () => Date.parse('2025-03-20T00:00:00Z') });
    const s = await ledger.query();
    assert.deepEqual([s.totals.points, s.totals.estimatedPoints], [42, 0]);
    assert.deepEqual(
      (await ledger.read()).map((e) => [e.points, e.replacedEstimate]),
      [[42, 10]],
    );
  });
});
