/**
 * A throwaway home for one client run: HOME, XDG dirs and a work folder under a temp dir, an
 * environment that keeps every client offline (telemetry, update checks and error reporting off),
 * and process cleanup by PID. Each process a sandbox starts carries POE_PROXY_CLIENT_SANDBOX=<id>
 * in its environment, inherited by its children: cleanup() ends every process that still carries
 * it, daemons that left the process group in their own session (Cline's hub) included.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const SANDBOX_VAR = 'POE_PROXY_CLIENT_SANDBOX';

/** Off switches the clients read (each one named in its own docs); a run must never reach the internet. */
const OFFLINE_ENV: Record<string, string> = {
  // Claude Code
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_BUG_COMMAND: '1',
  // opencode / Kilo
  OPENCODE_DISABLE_AUTOUPDATE: '1',
  OPENCODE_DISABLE_SHARE: '1',
  OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
  OPENCODE_DISABLE_MODELS_FETCH: '1',
  OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
  KILO_DISABLE_AUTOUPDATE: '1',
  KILO_DISABLE_SHARE: '1',
  KILO_DISABLE_LSP_DOWNLOAD: '1',
  KILO_DISABLE_MODELS_FETCH: '1',
  KILO_DISABLE_DEFAULT_PLUGINS: '1',
  KILO_TELEMETRY_DISABLED: '1',
  // Continue
  CONTINUE_TELEMETRY_ENABLED: '0',
  CONTINUE_ALLOW_ANONYMOUS_TELEMETRY: '0',
  // Qwen Code / Gemini CLI lineage
  QWEN_TELEMETRY_ENABLED: 'false',
  GEMINI_TELEMETRY_ENABLED: 'false',
  QWEN_CODE_DISABLE_UPDATE_CHECK: '1',
  // Cline
  CLINE_TELEMETRY_DISABLED: '1',
  CLINE_DISABLE_AUTOUPDATE: '1',
  POSTHOG_DISABLED: '1',
  // Codex
  CODEX_DISABLE_UPDATE_CHECK: '1',
  // generic: any request that is not to loopback goes to a proxy that refuses the connection, so a
  // client that tries to phone home fails fast instead of waiting for a timeout
  HTTP_PROXY: 'http://127.0.0.1:9',
  HTTPS_PROXY: 'http://127.0.0.1:9',
  http_proxy: 'http://127.0.0.1:9',
  https_proxy: 'http://127.0.0.1:9',
  NO_PROXY: '127.0.0.1,localhost,::1',
  no_proxy: '127.0.0.1,localhost,::1',
  DO_NOT_TRACK: '1',
  NO_UPDATE_NOTIFIER: '1',
  npm_config_update_notifier: 'false',
  npm_config_offline: 'true',
  CI: '1',
  NO_COLOR: '1',
  FORCE_COLOR: '0',
  TERM: 'dumb',
};

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed (closed at once when absent). */
  stdin?: string;
}

export class Sandbox {
  readonly id: string;
  readonly root: string;
  readonly home: string;
  /** The folder the client works in (its project). */
  readonly work: string;
  readonly xdg: { config: string; data: string; cache: string; state: string };

  constructor(label: string) {
    this.root = mkdtempSync(path.join(os.tmpdir(), `poe-client-${label}-`));
    this.id = path.basename(this.root);
    this.home = path.join(this.root, 'home');
    this.work = path.join(this.root, 'work');
    this.xdg = {
      config: path.join(this.home, '.config'),
      data: path.join(this.home, '.local', 'share'),
      cache: path.join(this.home, '.cache'),
      state: path.join(this.home, '.local', 'state'),
    };
    for (const d of [this.home, this.work, ...Object.values(this.xdg)]) mkdirSync(d, { recursive: true });
  }

  /** The environment of a client run: nothing from the developer's own profile or keys. */
  env(extra: Record<string, string | undefined> = {}, nodeDir?: string): Record<string, string> {
    const sysPath = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
    const pathDirs = [...(nodeDir ? [nodeDir] : []), path.dirname(process.execPath), ...sysPath];
    const env: Record<string, string> = {
      PATH: [...new Set(pathDirs)].join(':'),
      HOME: this.home,
      USER: process.env.USER ?? 'tester',
      LANG: 'C.UTF-8',
      TMPDIR: path.join(this.root, 'tmp'),
      SHELL: '/bin/bash',
      XDG_CONFIG_HOME: this.xdg.config,
      XDG_DATA_HOME: this.xdg.data,
      XDG_CACHE_HOME: this.xdg.cache,
      XDG_STATE_HOME: this.xdg.state,
      [SANDBOX_VAR]: this.id,
      ...OFFLINE_ENV,
    };
    mkdirSync(env.TMPDIR, { recursive: true });
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return env;
  }

  /** Runs a command in its own process group; on timeout the whole group is killed. */
  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn(cmd, args, {
        cwd: opts.cwd ?? this.work,
        env: opts.env ?? this.env(),
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.stdin ?? '');
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid, 'SIGKILL');
      }, opts.timeoutMs ?? 90_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: null, signal: null, stdout, stderr: stderr + String(e), timedOut, ms: Date.now() - started });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
      });
    });
  }

  /** PIDs of the live processes started from this sandbox (found by the marker in their environment). */
  processes(): number[] {
    const needle = `${SANDBOX_VAR}=${this.id}\0`;
    const pids: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      try {
        if (readFileSync(`/proc/${name}/environ`, 'latin1').includes(needle)) pids.push(Number(name));
      } catch {
        // gone already, or not ours
      }
    }
    return pids;
  }

  /** Ends every process this sandbox started (TERM, then KILL after a grace period) and removes its files. */
  async cleanup(): Promise<number[]> {
    const left = this.processes();
    for (const pid of left) signal(pid, 'SIGTERM');
    const deadline = Date.now() + 2000;
    while (this.processes().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of this.processes()) signal(pid, 'SIGKILL');
    rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
    return left;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    signal(pid, sig);
  }
}
