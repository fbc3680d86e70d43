import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ledger, parseLedgerText, summarize, toCsv } from '../../src/core/ledger';
import { ledgerEntry } from '../support/ledgerFixtures';

describe('Ledger corrections', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'poe-ledger-corr-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const correction = (over: Record<string, unknown> = {}) => ({ id: 'req-1', time: '2025-03-01T12:00:00.000Z', points: 42, estimate: 10, queryId: 'q1', at: '2025-03-01T12:05:00.000Z', ...over });

  it('appends a correction record and applies it on read: actual points, the replaced estimate, the query id', async () => {
    const ledger = new Ledger({ dir, maxBytes: 0, keepFiles: 0 });
    ledger.append(ledgerEntry({ id: 'req-1', points: 10, pointsEstimated: true }));
    ledger.append(ledgerEntry({ id: 'req-2', points: 10, pointsEstimated: true }));
    ledger.appendCorrection(correction());
    await ledger.flush();
    const lines = readFileSync(ledger.path, 'utf8').trim().split('\n');
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
      const ledger = new Ledger({ dir, maxBytes: 0, keepFiles: 0 });
      writeFileSync(ledger.path, `${text}\n`);
      const read = await ledger.read();
      assert.deepEqual(read.map((e) => [e.id, e.points, e.pointsEstimated]), [
        ['dup', 10, true],
        ['dup', 70, false],
        ['real', 5, false],
      ]);
    })();
  });

  it('finds a correction written after the entry rotated into an older file', async () => {
    const ledger = new Ledger({ dir, maxBytes: 800, keepFiles: 3 });
    ledger.append(ledgerEntry({ id: 'old', points: 10, pointsEstimated: true }));
    for (let i = 0; i < 3; i++) ledger.append(ledgerEntry({ id: `filler-${i}` }));
    ledger.appendCorrection(correction({ id: 'old' }));
    await ledger.flush();
    assert.ok(readdirSync(dir).includes('ledger.1.jsonl'), 'the entry was rotated away from the correction');
    const read = await ledger.read();
    assert.equal(read.find((e) => e.id === 'old')?.points, 42);
    assert.equal((await ledger.read({ limit: 2 })).length, 2);
  });
});
