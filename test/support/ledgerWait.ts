/** Waiting for ledger entries: points are matched after the answer, so an entry lands a moment after the response. */
import type { LedgerEntry } from '../../src/core/ledger';
import type { TestProxy } from './proxyHarness';

export async function ledgerEntries(proxy: TestProxy, n: number, timeoutMs = 5000): Promise<LedgerEntry[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await proxy.ledger.flush();
    const entries = await proxy.ledger.read();
    if (entries.length >= n) return entries;
    if (Date.now() > deadline) throw new Error(`ledger has ${entries.length} entries, expected ${n}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
