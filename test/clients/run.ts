/**
 * The real-client compatibility suite: each client installed from npm (scripts/clients/install.mjs)
 * runs headless against the proxy and the fake Poe, configured as the README (or a configure
 * command) tells a user, in a throwaway HOME. Every case gets its own fake, proxy and sandbox, so
 * cases run concurrently. Prints a matrix (client, version, endpoint, configuration, scenarios) and
 * returns the counts for scripts/test.mjs.
 *
 * Env: CLIENTS_GREP       run only the cases whose "client config scenario" matches this regex
 *      CLIENTS_JOBS       cases at once (default 3)
 *      CLIENTS_VERBOSE=1  print each case's client output
 */
import { strict as assert } from 'node:assert';
import { CASES, SCENARIOS, type Case, type CaseContext, type InstalledClient } from './clients';
import { Sandbox } from './sandbox';
import { generations, startStack } from './stack';
import { testTokens } from '../support/proxyHarness';

export interface SuiteOptions {
  clients: Record<string, InstalledClient>;
  grep?: string;
  jobs?: number;
}

interface Outcome {
  c: Case;
  ok: boolean | 'skipped';
  ms: number;
  error?: string;
  leftover: number;
}

async function runCase(c: Case, clients: Record<string, InstalledClient>): Promise<Outcome> {
  const started = Date.now();
  if (c.skip) return { c, ok: 'skipped', ms: 0, error: c.skip, leftover: 0 };
  const installed = clients[c.install];
  const sandbox = new Sandbox(`${c.install}-${c.scenario}`.replace(/[^a-z0-9-]/gi, ''));
  const stack = await startStack(c.proxy);
  const ctx: CaseContext = { sandbox, stack, installed, log: [] };
  let error: string | undefined;
  try {
    assert.ok(installed, `client ${c.install} is not installed`);
    await c.run(ctx);
  } catch (e) {
    const gens = generations(stack.fake).map((r) => `${r.method} ${r.path} ${r.body?.model ?? '?'} → ${r.status ?? '-'}`);
    error = `${(e as Error).message}\n    fake got: ${gens.join('; ') || 'no generation request'}${ctx.log.length ? `\n    ${ctx.log.join('\n    ')}` : ''}`;
  }
  const leftover = (await sandbox.cleanup()).length;
  await stack.close();
  if (process.env.CLIENTS_VERBOSE === '1') console.log(`--- ${label(c)}\n${ctx.log.join('\n')}`);
  return { c, ok: error === undefined, ms: Date.now() - started, error, leftover };
}

function label(c: Case): string {
  return `${c.name} [${c.config}] ${c.scenario}`;
}

export async function runSuite(opts: SuiteOptions): Promise<{ passed: number; failed: number; pending: number }> {
  const grep = opts.grep ?? process.env.CLIENTS_GREP;
  const re = grep ? new RegExp(grep, 'i') : undefined;
  const cases = CASES.filter((c) => !re || re.test(`${c.install} ${c.name} ${c.config} ${c.scenario}`));
  const jobs = Math.max(1, opts.jobs ?? (Number(process.env.CLIENTS_JOBS) || 3));
  const started = Date.now();
  const queue = [...cases];
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const o = await runCase(c, opts.clients);
        outcomes.push(o);
        const mark = o.ok === 'skipped' ? '-' : o.ok ? '✔' : '✘';
        console.log(`  ${mark} ${label(c)} (${(o.ms / 1000).toFixed(1)} s)${o.leftover ? ` — ended ${o.leftover} leftover process(es)` : ''}`);
        if (o.ok === false) console.log(`    ${o.error}`);
      }
    }),
  );
  await testTokens().dispose();
  printMatrix(outcomes, opts.clients);
  console.log(`clients: ${cases.length} cases in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return {
    passed: outcomes.filter((o) => o.ok === true).length,
    failed: outcomes.filter((o) => o.ok === false).length,
    pending: outcomes.filter((o) => o.ok === 'skipped').length,
  };
}

/** client | version | endpoint | configuration | one column per scenario (pass / FAIL / skip / blank = not applicable). */
export function matrixRows(outcomes: Outcome[], clients: Record<string, InstalledClient>): string[][] {
  const scenarios = SCENARIOS.filter((s) => CASES.some((c) => c.scenario === s));
  const rows: string[][] = [['client', 'version', 'endpoint', 'configured by', ...scenarios]];
  const keys = [...new Set(CASES.map((c) => `${c.name}\0${c.config}`))];
  for (const key of keys) {
    const [name, config] = key.split('\0');
    const group = outcomes.filter((o) => o.c.name === name && o.c.config === config);
    if (!group.length) continue;
    const c0 = group[0].c;
    const version = versionOf(c0, clients);
    rows.push([
      name,
      version,
      c0.endpoint,
      config,
      ...scenarios.map((s) => {
        const o = group.find((g) => g.c.scenario === s);
        return !o ? '' : o.ok === 'skipped' ? 'skip' : o.ok ? 'pass' : 'FAIL';
      }),
    ]);
  }
  return rows;
}

export function versionOf(c: Case, clients: Record<string, InstalledClient>): string {
  const inst = clients[c.install];
  if (!inst) return '?';
  if (!c.package) return inst.version;
  const spec = inst.packages.find((p) => p.startsWith(`${c.package}@`));
  return spec ? spec.slice(c.package.length + 1) : '?';
}

function printMatrix(outcomes: Outcome[], clients: Record<string, InstalledClient>): void {
  const rows = matrixRows(outcomes, clients);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log('\nReal-client matrix:');
  for (const r of rows)
    console.log(
      '  ' +
        r
          .map((cell, i) => cell.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
    );
  const skipped = outcomes.filter((o) => o.ok === 'skipped');
  for (const o of skipped) console.log(`  skipped: ${label(o.c)}: ${o.error}`);
}
