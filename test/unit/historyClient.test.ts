import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ledger } from '../../src/core/store/ledger';
import { addToSummary, emptySummary } from '../../src/shared/historyModel';
import { isHistoryFilter } from '../../src/shared/historyProtocol';
import { exportHistoryCsv, hostDay, loadHistory } from '../../src/vscode/historyData';
import { ledgerEntry } from '../support/ledgerFixtures';

describe('cost history by client', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'poe-hist-client-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the clients, breaks the totals down by client, and filters by one (the CSV too)', async () => {
    const ledger = new Ledger({ dir, retentionMonths: 0 });
    ledger.append(ledgerEntry({ id: 'a', client: 'Claude Code', points: 100 }));
    ledger.append(ledgerEntry({ id: 'b', client: 'Codex', points: 30 }));
    ledger.append(ledgerEntry({ id: 'c', client: 'Claude Code', points: 5 }));
    await ledger.flush();
    const all = await loadHistory(ledger, { model: null, from: null, to: null });
    assert.deepEqual(all.clients, ['Claude Code', 'Codex']);
    assert.deepEqual(
      all.summary.byClient.map((c) => [c.client, c.requests, c.points]),
      [
        ['Claude Code', 2, 105],
        ['Codex', 1, 30],
      ],
    );
    const codex = await loadHistory(ledger, { model: null, client: 'Codex', from: null, to: null });
    assert.deepEqual(
      codex.entries.map((e) => e.id),
      ['b'],
    );
    assert.equal(await exportHistoryCsv(ledger, { model: null, client: 'Claude Code', from: null, to: null }, path.join(dir, 'out.csv')), 2);
  });

  it('keeps the live per-client totals like summarize does', () => {
    const e = ledgerEntry({ client: 'opencode', points: 7 });
    const s = addToSummary(addToSummary(emptySummary(), e, hostDay(e)), e, hostDay(e));
    assert.deepEqual(s.byClient, [{ client: 'opencode', requests: 2, points: 14, tokensIn: 200, tokensOut: 100 }]);
  });

  it('accepts a client filter from the webview only as a short string or null', () => {
    assert.ok(isHistoryFilter({ model: null, client: 'Cline', from: null, to: null }));
    assert.ok(isHistoryFilter({ model: null, from: null, to: null }), 'older webview state without client');
    assert.ok(!isHistoryFilter({ model: null, client: 42, from: null, to: null }));
    assert.ok(!isHistoryFilter({ model: null, client: 'x'.repeat(10_000), from: null, to: null }));
  });
});
