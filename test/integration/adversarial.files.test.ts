/**
 * Adversarial review, hostile local input and files: what a malicious repository, a hostile client or
 * a spreadsheet-borne attack could put into the CSV export, models.yaml, the picks file or the logs.
 */
import { strict as assert } from 'node:assert';
import type { LedgerEntry } from '../../src/core/ledger';
import { toCsv } from '../../src/core/ledger';

function entry(over: Partial<LedgerEntry>): LedgerEntry {
  return {
    time: '2025-01-01T00:00:00.000Z',
    id: 'req-1',
    model: 'GPT-4.1',
    endpoint: 'chat',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    tokensIn: 1,
    tokensOut: 1,
    points: 10,
    pointsEstimated: false,
    balanceAfter: null,
    durationMs: 5,
    clipped: false,
    retries: 0,
    client: '127.0.0.1',
    ...over,
  };
}

/** Splits one CSV line the way a spreadsheet in a `;` locale or a `,` locale would (quotes respected). */
function cells(line: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === sep) out.push(cur), (cur = '');
    else cur += ch;
  }
  out.push(cur);
  return out;
}

describe('adversarial: files and local input', () => {
  describe('CSV export (item 14)', () => {
    const hostile = ["=cmd|' /C calc'!A0", '@SUM(1+1)', '+1+1', '-1+1', '\t=1', '\r=1', ' =1+1', 'x;=1+1', 'a,=1+1'];

    for (const sep of [',', ';']) {
      it(`no cell a spreadsheet splitting on "${sep}" reads starts a formula`, () => {
        const csv = toCsv(hostile.map((h) => entry({ model: h, id: h, error: h })));
        const lines = csv.split('\r\n').slice(1, -1);
        assert.equal(lines.length, hostile.length);
        for (const line of lines) {
          for (const cell of cells(line, sep)) {
            assert.doesNotMatch(cell.trimStart(), /^[=+\-@\t\r]/, `cell ${JSON.stringify(cell)} of ${JSON.stringify(line)}`);
          }
        }
      });
    }

    it('keeps the text: a neutralised cell is the original behind one apostrophe', () => {
      const csv = toCsv([entry({ model: '=1+1', error: 'x;y' })]);
      const row = cells(csv.split('\r\n')[1], ',');
      assert.equal(row[2], "'=1+1");
      assert.equal(row.at(-1), 'x;y');
    });

    it('numbers stay numbers (a negative balance is not a formula)', () => {
      const csv = toCsv([entry({ balanceAfter: -5 })]);
      assert.equal(cells(csv.split('\r\n')[1], ',')[11], '-5');
    });
  });
});
