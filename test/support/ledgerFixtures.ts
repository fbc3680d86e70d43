/** Ledger entries for tests: one typical finished chat request; tests override what they look at. */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { LedgerEntry } from '../../src/core/store/ledger';
import { liveName } from '../../src/core/store/ledgerFiles';

export function ledgerEntry(over: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    time: '2025-03-01T12:00:00.000Z',
    id: 'req-1',
    model: 'GPT-4.1',
    endpoint: 'chat',
    stream: true,
    status: 'ok',
    httpStatus: 200,
    tokensIn: 100,
    tokensOut: 50,
    points: 10,
    pointsEstimated: false,
    balanceAfter: 990,
    durationMs: 1234,
    clipped: false,
    retries: 0,
    client: 'cline',
    ...over,
  };
}

/** An ISO time on `day` (YYYY-MM-DD) at a local hour and minute, so local-day grouping is predictable. */
export function localTime(day: string, hour = 12, minute = 0): string {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y, m - 1, d, hour, minute).toISOString();
}

const FIXTURE_MODELS = ['Claude-Sonnet-4.5', 'GPT-4.1', 'Gemini-2.5-Pro', 'GPT-5'];
const FIXTURE_CLIENTS = ['claude-code', 'codex', 'cline', 'aider'];

/**
 * Writes `perMonth` answered requests into each of `months` (`YYYY-MM`, UTC) as that month's plain
 * file (`ledger-YYYY-MM.jsonl`, as the ledger writes it before it compresses a closed month), spread
 * evenly over the month, models and clients in turn (the bench's year: scripts/bench/ledger.mjs).
 * Returns the number of entries written (400,000 take 3–6 s on a busy 2-core machine).
 */
export function writeLedgerMonths(dir: string, months: readonly string[], perMonth: number): number {
  let k = 0;
  for (const month of months) {
    const [y, m] = month.split('-').map(Number);
    const start = Date.UTC(y, m - 1, 1);
    const step = (Date.UTC(y, m, 1) - 1 - start) / perMonth;
    const lines = new Array<string>(perMonth);
    for (let i = 0; i < perMonth; i++, k++) {
      const entry: LedgerEntry = {
        time: new Date(start + Math.floor(i * step)).toISOString(),
        id: `chatcmpl-${k.toString(36).padStart(10, '0')}`,
        model: FIXTURE_MODELS[k % FIXTURE_MODELS.length],
        endpoint: k % 3 === 0 ? 'messages' : 'chat',
        stream: k % 2 === 0,
        status: 'ok',
        httpStatus: 200,
        tokensIn: 1000 + (k % 9000),
        tokensOut: 100 + (k % 900),
        points: 50 + (k % 700),
        pointsEstimated: false,
        balanceAfter: 5_000_000 - k,
        durationMs: 500 + (k % 5000),
        clipped: false,
        retries: 0,
        client: FIXTURE_CLIENTS[k % FIXTURE_CLIENTS.length],
      };
      lines[i] = `${JSON.stringify(entry)}\n`;
    }
    writeFileSync(path.join(dir, liveName(month)), lines.join(''));
  }
  return k;
}
