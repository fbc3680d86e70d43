/**
 * A bare node:http client for the reliability and security tests: they need to send what an SDK never
 * would (odd headers, broken bodies, slow readers) and see the exact bytes the proxy answers with.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { LedgerEntry } from '../../src/core/store/ledger';
import type { TestProxy } from './proxyHarness';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RawOptions {
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  agent?: http.Agent;
  /** Called with the response as soon as headers arrive (to watch a stream as it flows). */
  onResponse?: (res: http.IncomingMessage) => void;
}

/** Sends one request to `url` (origin only) and resolves with the whole answer. */
export function rawRequest(url: string, opts: RawOptions = {}): Promise<RawResponse> {
  const u = new URL(url);
  const body = opts.body;
  const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
  if (body !== undefined && headers['content-length'] === undefined) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: opts.path ?? '/v1/chat/completions',
        method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
        headers,
        agent: opts.agent,
      },
      (res) => {
        opts.onResponse?.(res);
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A JSON POST to the chat endpoint. */
export function postChat(url: string, body: unknown, extra: Omit<RawOptions, 'body'> = {}): Promise<RawResponse> {
  return rawRequest(url, { ...extra, method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...(extra.headers ?? {}) } });
}

/** The `data:` payloads of an SSE body, in order ([DONE] included); comments are skipped. */
export function sseData(body: string): string[] {
  return body
    .split(/\n\n/)
    .flatMap((ev) =>
      ev
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6)),
    )
    .filter((d) => d.length > 0);
}

/** The text an SSE body carried in `choices[0].delta.content`. */
export function sseText(body: string): string {
  let text = '';
  for (const d of sseData(body)) {
    if (d === '[DONE]') continue;
    const obj = JSON.parse(d);
    text += obj.choices?.[0]?.delta?.content ?? '';
  }
  return text;
}

/** Asserts-free check that a body is exactly OpenAI's error shape; returns the error object or undefined. */
export function openAiError(text: string): { message: string; type: string; param: string | null; code: string | null } | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return undefined;
  }
  const err = (obj as { error?: Record<string, unknown> })?.error;
  if (!err || typeof err !== 'object') return undefined;
  const keys = Object.keys(err).sort().join(',');
  if (keys !== 'code,message,param,type') return undefined;
  if (typeof err.message !== 'string' || err.message.length === 0 || typeof err.type !== 'string') return undefined;
  return err as { message: string; type: string; param: string | null; code: string | null };
}

/** Waits until the proxy's ledger holds at least `n` entries (some are written after the response ends). */
export async function ledgerEntries(proxy: TestProxy, n: number, timeoutMs = 5000): Promise<LedgerEntry[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await proxy.ledger.flush();
    const entries = await proxy.ledger.read();
    if (entries.length >= n || Date.now() > deadline) return entries;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Refused requests written to the ledger (after a flush), summed per reason: they are counted, not listed. */
export async function refusedCounts(proxy: TestProxy): Promise<Record<string, number>> {
  await proxy.ledger.flush();
  const out: Record<string, number> = {};
  for (const r of await proxy.ledger.readRefused()) out[r.reason] = (out[r.reason] ?? 0) + r.count;
  return out;
}

/**
 * `ledgerEntries`, then one reconciler pass (answers without a footer book the estimate first; the
 * reconciler books Poe's actual points as a correction), read back with the corrections applied.
 */
export async function reconciledEntries(proxy: TestProxy, n: number): Promise<LedgerEntry[]> {
  await ledgerEntries(proxy, n);
  await proxy.engine.reconciler?.runOnce();
  await proxy.ledger.flush();
  return proxy.ledger.read();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Sends raw bytes on a fresh connection and resolves with everything the server sent back (until it closes). */
export function rawExchange(port: number, write: (sock: net.Socket) => void, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got: ${Buffer.concat(parts).toString('utf8').slice(0, 300)}`));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => parts.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts).toString('utf8'));
    });
    write(sock);
  });
}

/** Starts a streaming chat and resolves, paused, once the first body bytes arrived; the caller decides what to do next. */
export function openStream(url: string, body: unknown): Promise<{ req: http.ClientRequest; res: http.IncomingMessage; first: Buffer }> {
  const u = new URL(url);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        res.once('data', (first: Buffer) => {
          res.pause(); // nothing is lost before the caller attaches its own listener
          resolve({ req, res, first });
        });
        res.once('error', () => undefined);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}
