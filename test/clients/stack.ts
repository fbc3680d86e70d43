/**
 * The fake Poe and the proxy in front of it for one client run, with the bundled models.yaml (what
 * a user gets), and the scripted answers of the suite's scenarios.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { ConfigOverrides } from '../../src/core/store/config';
import { ModelRegistry } from '../../src/core/store/registry';
import { anyContentText, jsonModeReply, type ChatReply } from '../support/fake/reply';
import { FakePoe, type RecordedRequest } from '../support/fake/server';
import { startProxy, type TestProxy } from '../support/proxyHarness';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const BUNDLED_MODELS = readFileSync(path.join(REPO_ROOT, 'models.yaml'), 'utf8');

/** The answer of the prompt scenarios: words a client prints only if it got them from the fake. */
export const ANSWER_PIECES = ['Poe ', 'proxy ', 'says: ', 'pong-', '7731 ', 'over ', 'and ', 'out.'];
export const ANSWER = ANSWER_PIECES.join('');
/** The shell command the tool scenario asks for; its output (not in the command's text) proves the client ran it. */
export const TOOL_COMMAND = 'echo poe-$((20+22))-ok';
export const TOOL_OUTPUT = 'poe-42-ok';
/** The final answer after the fake saw the tool result (and a different one if the result did not carry the output). */
export const TOOL_DONE = 'Tool result received: all good.';
export const TOOL_RESULT_MISSING = 'The tool result did not contain the expected output.';

export interface Stack {
  fake: FakePoe;
  proxy: TestProxy;
  /** Root URL the client is given, no /v1 (what Claude Code wants): the recorder in front of the proxy. */
  url: string;
  /** What the client sent the proxy and what it got back (status), in order. */
  seen: Array<{ method: string; path: string; status?: number }>;
  close(): Promise<void>;
}

/** The fake Poe, the proxy (with `overrides`, e.g. an access key) and a recording pass-through in front of it. */
export async function startStack(overrides: ConfigOverrides = {}): Promise<Stack> {
  const registry = ModelRegistry.parse(BUNDLED_MODELS, 'models.yaml');
  const fake = await FakePoe.start({ models: registry.models.map((m) => m.id) });
  const proxy = await startProxy(fake, overrides, { yaml: BUNDLED_MODELS });
  const recorder = await startRecorder(proxy.url);
  return {
    fake,
    proxy,
    url: recorder.url,
    seen: recorder.seen,
    async close() {
      await recorder.close();
      await proxy.close();
      await fake.close();
    },
  };
}

/**
 * A pass-through between a client and the proxy that notes each request and its status: what the
 * client did (retries included), also for requests the proxy answers itself. Bodies are piped as they
 * come, so streams stay streams; the Host header is rewritten to the proxy's (it checks Host).
 */
async function startRecorder(target: string): Promise<{ url: string; seen: Stack['seen']; close(): Promise<void> }> {
  const to = new URL(target);
  const seen: Stack['seen'] = [];
  const agent = new http.Agent({ keepAlive: false });
  const server = http.createServer((req, res) => {
    const entry: Stack['seen'][number] = { method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0] };
    seen.push(entry);
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host }, agent },
      (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}

// ── what a request carries, in any of the three dialects ──

/** Names of the tools a request declares (chat `tools[].function.name`, Responses/Anthropic `tools[].name`). */
export function declaredTools(body: any): Array<{ name: string; schema: any }> {
  if (!Array.isArray(body?.tools)) return [];
  return body.tools
    .map((t: any) => ({ name: t?.function?.name ?? t?.name, schema: t?.function?.parameters ?? t?.parameters ?? t?.input_schema ?? {} }))
    .filter((t: { name: unknown }) => typeof t.name === 'string');
}

/** Text of every tool result in a request (chat role "tool", Responses function_call_output, Anthropic tool_result). */
export function toolResults(body: any): string[] {
  const out: string[] = [];
  const items = [...(Array.isArray(body?.messages) ? body.messages : []), ...(Array.isArray(body?.input) ? body.input : [])];
  for (const m of items) {
    if (m?.role === 'tool') out.push(typeof m.content === 'string' ? m.content : anyContentText(m.content));
    if (m?.type === 'function_call_output' || m?.type === 'custom_tool_call_output')
      out.push(typeof m.output === 'string' ? m.output : JSON.stringify(m.output));
    if (Array.isArray(m?.content)) {
      for (const p of m.content) if (p?.type === 'tool_result') out.push(typeof p.content === 'string' ? p.content : anyContentText(p.content));
    }
  }
  return out;
}

/** Arguments for a shell tool, shaped by its declared schema (`command` string or argv array, or `cmd`); other required fields get plain values. */
export function shellArguments(schema: any, command = TOOL_COMMAND): Record<string, unknown> {
  const props = schema?.properties ?? {};
  const args: Record<string, unknown> = {};
  const key = ['command', 'cmd', 'commands'].find((k) => k in props) ?? 'command';
  const t = props[key]?.type;
  args[key] = t === 'array' ? (key === 'commands' ? [command] : ['bash', '-lc', command]) : command;
  for (const r of Array.isArray(schema?.required) ? schema.required : []) {
    if (r in args) continue;
    const p = props[r] ?? {};
    const type = Array.isArray(p.type) ? p.type[0] : p.type;
    if (Array.isArray(p.enum)) args[r] = p.enum[0];
    else if (type === 'boolean') args[r] = false;
    else if (type === 'number' || type === 'integer') args[r] = 30_000;
    else if (type === 'array') args[r] = [];
    else if (type === 'object') args[r] = {};
    else args[r] = /description|reason|explanation/i.test(r) ? 'Print a marker' : '.';
  }
  return args;
}

export type Script = 'answer' | 'tool';

/**
 * Installs the fake's answers for a scenario. 'answer': ANSWER in several pieces (streamed as such),
 * JSON when the request asks for JSON. 'tool': when the request declares one of `shellTools` and
 * carries no tool result yet, a call of that tool running TOOL_COMMAND; once the result is there,
 * TOOL_DONE (or TOOL_RESULT_MISSING when it lacks TOOL_OUTPUT). Requests without the tool (a
 * client's side requests: titles, summaries) get ANSWER.
 */
export function script(fake: FakePoe, kind: Script, shellTools: readonly string[] = [], opts: { jsonObject?: unknown } = {}): void {
  fake.reply = (body: any): ChatReply => {
    // JSON mode without a schema: the schema is in the prompt, which a model follows and the fake cannot read.
    if (opts.jsonObject !== undefined && body?.response_format?.type === 'json_object') return { content: JSON.stringify(opts.jsonObject) };
    const json = jsonModeReply(body);
    if (json !== undefined) return { content: json };
    if (kind === 'tool') {
      const results = toolResults(body);
      if (results.length) return { content: results.some((r) => r.includes(TOOL_OUTPUT)) ? TOOL_DONE : TOOL_RESULT_MISSING };
      const tool = declaredTools(body).find((t) => shellTools.includes(t.name));
      if (tool) return { toolCalls: [{ name: tool.name, arguments: JSON.stringify(shellArguments(tool.schema)) }] };
    }
    return { chunks: [...ANSWER_PIECES] };
  };
}

/** The generation requests the fake got (chat, responses, messages). */
export function generations(fake: FakePoe): RecordedRequest[] {
  return fake.requests.filter((r) => r.method === 'POST' && /^\/v1\/(chat\/completions|responses|messages)$/.test(r.path));
}
