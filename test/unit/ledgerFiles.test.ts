/** The line readers under the ledger: forward (plain and gzip) and backward, with the line-length bound. */
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { MAX_LINE_BYTES, scanLines, scanLinesBackward } from '../../src/core/store/ledgerFiles';

describe('ledger line readers', () => {
  let dir: string;
  beforeEach(async () => (dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ledger-lines-'))));
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  // Lines around the 256 KiB read chunks, one too long, and an unterminated tail (a write in progress).
  const long = 'x'.repeat(MAX_LINE_BYTES + 1);
  const lines = ['first', 'a'.repeat(60_000), 'c'.repeat(60_000), long, 'd'.repeat(60_000), 'b'.repeat(MAX_LINE_BYTES), 'é€😀', '', 'last'];
  const text = `${lines.join('\n')}\n` + 'partial';
  const expected = lines.filter((l) => l !== long);

  it('forward: every complete line with its number, the long one reported, the tail held back', async () => {
    const file = path.join(dir, 'a.jsonl');
    await fsp.writeFile(file, text);
    const seen: Array<[number, string]> = [];
    const oversized: number[] = [];
    const end = await scanLines(file, { line: (t, n) => void seen.push([n, t]), oversized: (n) => void oversized.push(n) });
    assert.deepEqual(
      seen.map(([, t]) => t),
      expected,
    );
    assert.deepEqual(
      seen.map(([n]) => n),
      [1, 2, 3, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(oversized, [4]);
    assert.equal(end.offset, Buffer.byteLength(text) - 'partial'.length, 'a later scan resumes after the last complete line');
    const resumed: string[] = [];
    await fsp.appendFile(file, ' now done\n');
    await scanLines(file, { line: (t) => void resumed.push(t), oversized: () => undefined }, { start: end.offset, lineNo: end.lines });
    assert.deepEqual(resumed, ['partial now done']);
  });

  it('forward through gzip: the same lines (a compressed tail is a crash leftover and is delivered)', async () => {
    const file = path.join(dir, 'a.jsonl.gz');
    await fsp.writeFile(file, gzipSync(text));
    const seen: string[] = [];
    await scanLines(file, { line: (t) => void seen.push(t), oversized: () => undefined });
    assert.deepEqual(seen, [...expected, 'partial']);
  });

  it('backward: the same lines newest first, the long one and the tail skipped', async () => {
    const file = path.join(dir, 'b.jsonl');
    await fsp.writeFile(file, text);
    const seen: string[] = [];
    await scanLinesBackward(file, (t) => void seen.push(t));
    assert.deepEqual(seen, [...expected].reverse());
    const firstTwo: string[] = [];
    await scanLinesBackward(file, (t) => (firstTwo.push(t), firstTwo.length < 2));
    assert.deepEqual(firstTwo, ['last', '']);
  });
});
