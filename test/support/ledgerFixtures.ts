/** Ledger entries for tests: one typical finished chat request; tests override what they look at. */
import type { LedgerEntry } from '../../src/core/store/ledger';

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
