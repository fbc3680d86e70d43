/**
 * A separate process appending to a shared ledger directory (test/integration/ledger.test.ts):
 * `node ledgerWriterChild.js <dir> <client> <count>`. Entries spread over three months so month
 * files and the maintenance (compression under the lock) run while the other writer appends.
 */
import { Ledger } from '../../src/core/store/ledger';
import { ledgerEntry } from './ledgerFixtures';

async function main(): Promise<void> {
  const [dir, client, countText] = process.argv.slice(2);
  const count = Number(countText);
  const ledger = new Ledger({ dir, retentionMonths: 0, closeGraceMs: 0 });
  const months = ['2025-01', '2025-02', new Date().toISOString().slice(0, 7)];
  for (let i = 0; i < count; i++) {
    const month = months[Math.floor((i / count) * months.length)];
    ledger.append(ledgerEntry({ time: `${month}-10T10:00:00.000Z`, id: `${client}-${i}`, client, error: i % 97 === 0 ? 'x'.repeat(400) : undefined }));
    if (i % 7 === 0) ledger.countRefused({ client, reason: 'rate_limit' });
    // Yield now and then so the two processes' writes interleave.
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    // Compress the past months again and again while both processes still append to them.
    if (i % 1000 === 999) void ledger.maintain();
  }
  await ledger.close();
}

void main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
