// Contract between e2e modules (test/e2e/*.e2e.ts -> out/test/e2e/*.e2e.js) and their runner,
// scripts/vscode-host/run-e2e.mjs. Each module gets its own fresh code-server + Chromium page with
// the extension under development loaded and an empty temp workspace open.
//
//   import type { E2eContext, E2ePrepare } from './harness';
//   export const settings = { 'poeProxy.port': 0 };          // optional, written before start
//   export async function run({ step, helpers }: E2eContext): Promise<void> {
//     await step('status bar item shows', () => helpers.statusBarText(/Poe/));
//     await step('command opens panel', async () => {
//       await helpers.runCommand('Poe Proxy: Show Costs');
//       await helpers.findWebviewFrame(/Cost history/);
//     });
//   }
import type { Browser, Frame, Page } from 'playwright-core';

export interface CodeServer {
  port: number;
  /** http://127.0.0.1:PORT/ */
  url: string;
  pid: number;
  /** Temp dir holding user data, extensions and XDG dirs; removed on stop. */
  baseDir: string;
  userDataDir: string;
  extensionsDir: string;
  readonly exited: boolean;
  /** code-server's own stdout/stderr so far (also in test-results/e2e-<module>-code-server.log). */
  output(): string;
  stop(): Promise<void>;
}

export type FramePredicate = string | RegExp | ((frame: Frame) => boolean | Promise<boolean>);

/** Page-bound helpers from scripts/vscode-host/host.mjs. All waits are bounded (default 30 s). */
export interface E2eHelpers {
  /** F1, type the title, pick the row containing it. */
  runCommand(title: string, opts?: { timeout?: number }): Promise<void>;
  /** Waits for a status bar item whose text or aria-label matches; returns its text. */
  statusBarText(match: string | RegExp, opts?: { timeout?: number }): Promise<string>;
  /** Waits for a webview content frame whose body text matches (or the predicate holds). */
  findWebviewFrame(predicate: FramePredicate, opts?: { timeout?: number }): Promise<Frame>;
  /** Saves <artifactsDir>/e2e-<module>-<name>.png; returns its path. */
  screenshot(name: string): Promise<string>;
  /** Merges into the user's settings.json while running (the workbench picks changes up). */
  writeUserSettings(settings: Record<string, unknown>): void;
}

export interface StepOptions {
  /** Bound for this step (default 60 000 ms). */
  timeout?: number;
  /** On failure, count it but keep going instead of ending the module. */
  soft?: boolean;
}

export interface E2eContext {
  page: Page;
  browser: Browser;
  codeServer: CodeServer;
  /** Repository root. */
  root: string;
  /** The folder open in the workbench (fresh temp dir, removed afterwards). */
  workspace: string;
  /** Where screenshots and logs go: <root>/test-results (gitignored). */
  artifactsDir: string;
  /** Name of this module (file name without .e2e.js). */
  name: string;
  /**
   * Runs one named check: a pass when fn resolves, a fail when it throws or times out (then a
   * screenshot is saved and, unless `soft`, the module ends: the error is rethrown).
   */
  step<T>(name: string, fn: () => T | Promise<T>, opts?: StepOptions): Promise<T>;
  /** Counts a pending (skipped) check. */
  skip(name: string, reason?: string): void;
  helpers: E2eHelpers;
  /**
   * Opens a second VS Code window on the same folder and profile (a page in the same browser context:
   * shared globalState and secrets; code-server gives it its own extension host). Closed with the module.
   * Its screenshots are named e2e-<module>-window2-<name>.png.
   */
  openWindow(): Promise<{ page: Page; helpers: E2eHelpers }>;
  log(...args: unknown[]): void;
}

/** What an optional `prepare()` export returns; runs before code-server starts. */
export interface E2ePrepare {
  /** User settings.json entries (merged over the static `settings` export). */
  settings?: Record<string, unknown>;
  /** Extra environment for code-server and so the extension host. */
  env?: Record<string, string>;
  /** Workspace trust on: the folder opens untrusted, in Restricted Mode (default: trust off, everything trusted). */
  workspaceTrust?: boolean;
  /** Files to create in the workspace, path relative to it -> content. */
  workspaceFiles?: Record<string, string>;
  /**
   * A user data directory prepare() filled (e.g. the extension's data directory, see `globalStorageDir`
   * in support.ts) for code-server to use instead of a fresh one; removed after code-server stopped.
   */
  userDataDir?: string;
  /** A .vsix to install instead of loading the development folder (wins over the module's `vsix`). */
  vsix?: string;
  /** Called after the module finished (also on failure), e.g. to close a fake server. */
  cleanup?: () => void | Promise<void>;
}

export interface E2eModule {
  run(ctx: E2eContext): Promise<void>;
  /** Static user settings written before code-server starts. */
  settings?: Record<string, unknown>;
  prepare?(): E2ePrepare | Promise<E2ePrepare>;
  /** Bound for the whole module incl. startup (default 240 000 ms). */
  timeoutMs?: number;
  /** Install this .vsix (path relative to the repo root) instead of loading the development folder. */
  vsix?: string;
}
