/**
 * The client setups as the README prints them (section "Using it from your editor tools"), so the
 * suite configures each client from the README's own text and a README that drifts fails the suite.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The port the README's examples use. */
export const README_URL = 'http://127.0.0.1:9876';

let cached: string | undefined;
function readme(root: string): string {
  cached ??= readFileSync(path.join(root, 'README.md'), 'utf8');
  return cached;
}

/**
 * The first fenced code block after the paragraph that starts with `**<client>**`, with the README's
 * proxy URL replaced by `url`. Throws when the README has no such block (a setup removed or renamed).
 */
export function readmeBlock(root: string, client: string, url: string, lang?: string): string {
  const text = readme(root);
  const start = text.indexOf(`\n**${client}**`);
  if (start < 0) throw new Error(`README has no paragraph starting with **${client}**`);
  const fence = new RegExp('```' + (lang ?? '[a-z]*') + '\\n([\\s\\S]*?)```', 'g');
  fence.lastIndex = start;
  const m = fence.exec(text);
  if (!m) throw new Error(`README: no \`\`\`${lang ?? ''} block after **${client}**`);
  return m[1].split(README_URL).join(url);
}

/** `export NAME=value   # comment` lines of a shell block → environment. */
export function exportsOf(block: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of block.split('\n')) {
    const m = /^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

/** The arguments of the block's line that runs `command` (simple words and quoted strings). */
export function commandArgs(block: string, command: string): string[] {
  const line = block.split('\n').find((l) => l.trim().startsWith(`${command} `));
  if (!line) throw new Error(`README block has no \`${command} …\` line`);
  const words = line.trim().match(/"[^"]*"|'[^']*'|\S+/g) ?? [];
  return words.slice(1).map((w) => w.replace(/^(['"])(.*)\1$/, '$2'));
}
