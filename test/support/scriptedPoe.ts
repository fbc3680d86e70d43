/**
 * A hostile or broken "Poe" for adversarial tests: every request is answered by the test's own
 * handler, byte for byte, so a test can send what the well-behaved FakePoe never would (redirects,
 * odd statuses, huge events, keys quoted back, comments only).
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ScriptedHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void | Promise<void>;

export interface ScriptedPoe {
  url: string;
  /** Requests seen so far (method, url, headers), but for the Usage API's (answered 404). */
  readonly requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  handle(handler: ScriptedHandler): void;
  close(): Promise<void>;
}

export async function startScriptedPoe(handler: ScriptedHandler = (_q, res) => void res.end()): Promise<ScriptedPoe> {
  let current = handler;
  const requests: ScriptedPoe['requests'] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    // The proxy also asks for the balance and the points history: not what these tests script.
    if ((req.url ?? '').startsWith('/usage')) {
      req.resume();
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"not scripted"}}');
      return;
    }
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      Promise.resolve(current(req, res, Buffer.concat(parts).toString('utf8'))).catch(() => res.destroy());
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle(h) {
      current = h;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Writes SSE response headers (status 200). */
export function sseHead(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.flushHeaders();
}
