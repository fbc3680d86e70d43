// Section 7: a year of heavy use in the cost ledger. Generates 1,000,000 entries over 12 months
// (11 closed months gzipped as an older version left them, in one gzip member each; the current one
// plain) in a temp directory, then measures in a fresh Node process (its memory is the history view's
// own): the ledger's start cost, the history view's first open after the upgrade (old months read whole)
// and their rewrite in pieces in the background, then in a new process (months in pieces, indexed): the
// open, filters, a "load older" page, a streamed CSV export and the proxy's start-up seed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODELS = [
  'Claude-Sonnet-4.5',
  'GPT-4.1',
  'Gemini-2.5-Pro',
  'GPT-5',
  'Claude-Opus-4.1',
  'Grok-4',
  'o3',
  'Llama-4',
  'DeepSeek-R1',
  'Mistral-Large',
  'Qwen3',
  'Rare-Model',
];
const CLIENTS = ['claude-code', 'codex', 'cline', 'aider', 'vscode-lm'];

const monthKey = (d) => `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;

/** Writes `total` entries over the 12 months ending now into `dir`; returns the layout. */
export function generateLedger(dir, total) {
  const now = new Date();
  const months = [];
  for (let i = 11; i >= 0; i--) months.push(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1)));
  const perMonth = Math.floor(total / months.length);
  let written = 0;
  let bytes = 0;
  const files = [];
  for (const [mi, start] of months.entries()) {
    const end = mi === months.length - 1 ? now.getTime() - 60_000 : Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1) - 1;
    const n = mi === months.length - 1 ? total - written : perMonth;
    const step = (end - start.getTime()) / n;
    const lines = new Array(n);
    for (let i = 0; i < n; i++) {
      const k = written + i;
      // One entry in 2,000 is the rare model: a filter that has to look through many files.
      const model = k % 2000 === 0 ? 'Rare-Model' : MODELS[k % 11];
      lines[i] = JSON.stringify({
        time: new Date(start.getTime() + Math.floor(i * step)).toISOString(),
        id: `chatcmpl-${k.toString(36).padStart(10, '0')}`,
        model,
        endpoint: k % 3 === 0 ? 'messages' : 'chat',
        stream: k % 2 === 0,
        status: k % 50 === 0 ? 'error' : 'ok',
        httpStatus: k % 50 === 0 ? 502 : 200,
        tokensIn: 1000 + (k % 9000),
        tokensOut: 100 + (k % 900),
        points: 50 + (k % 700),
        pointsEstimated: k % 10 === 0,
        balanceAfter: 5_000_000 - k,
        durationMs: 500 + (k % 5000),
        clipped: k % 17 === 0,
        retries: k % 23 === 0 ? 1 : 0,
        client: CLIENTS[k % CLIENTS.length],
      });
    }
    const text = `${lines.join('\n')}\n`;
    bytes += Buffer.byteLength(text);
    const key = monthKey(start);
    if (mi === months.length - 1) {
      writeFileSync(path.join(dir, `ledger-${key}.jsonl`), text);
      files.push(`ledger-${key}.jsonl`);
    } else {
      writeFileSync(path.join(dir, `ledger-${key}.jsonl.gz`), gzipSync(text, { level: 6 }));
      files.push(`ledger-${key}.jsonl.gz`);
    }
    written += n;
  }
  return { entries: written, rawBytes: bytes, files, rareModel: 'Rare-Model', busyModel: MODELS[1] };
}

/** A time zone other than this process's (the indexes were built in this one). */
function otherTimeZone() {
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return here === 'Asia/Tokyo' ? 'America/New_York' : 'Asia/Tokyo';
}

export async function ledgerRun(supportPath, { entries = 1_000_000, log = () => {} } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poe-bench-ledger-'));
  try {
    log(`ledger: generating ${entries.toLocaleString('en-US')} entries…`);
    let t0 = performance.now();
    const layout = generateLedger(dir, entries);
    const generateMs = performance.now() - t0;
    const child = path.join(HERE, 'ledger-child.cjs');
    const run = async (phase, env = process.env) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', child, supportPath, dir, phase, layout.busyModel, layout.rareModel], {
        maxBuffer: 1 << 20,
        timeout: 600_000,
        env,
      });
      return JSON.parse(stdout);
    };
    log('ledger: first open after an upgrade (old months read whole), their rewrite in pieces…');
    const cold = await run('cold');
    log('ledger: open in a new process (months in pieces), filters, paging, export, start-up seed…');
    const warm = await run('warm');
    log('ledger: open after a time-zone change (every month counted again)…');
    const tz = await run('tz', { ...process.env, TZ: otherTimeZone() });
    return { layout, generateMs, cold, warm, tz };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node scripts/bench/ledger.mjs [entries]`: section 7 alone (builds the support bundle, prints the JSON).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { buildForBench } = await import('./build.mjs');
  const build = await buildForBench();
  const entries = Number(process.argv[2] ?? 1_000_000);
  const result = await ledgerRun(build.support, { entries, log: (m) => process.stderr.write(`bench: ${m}\n`) });
  process.stdout.write(`${JSON.stringify({ cold: result.cold, warm: result.warm, tz: result.tz, generateMs: result.generateMs }, null, 2)}\n`);
}
