/**
 * Asks whatever listens on a local port whether it is a Poe proxy (GET /health → `name: 'poe-proxy'`).
 * Used when the port is taken: another VS Code window may already serve it.
 */
import * as http from 'node:http';
import { isLoopbackHost } from '../core/store/config';
import { PROXY_NAME } from '../core/version';

export type HealthProbe =
  | { kind: 'poe-proxy'; url: string; port: number; pid?: number; version?: string; upstream?: string }
  | { kind: 'other'; detail: string }
  | { kind: 'nothing'; detail: string };

/** The address to probe for a bind host: loopback for wildcard and loopback binds, else the host itself. */
export function probeHost(bindHost: string): string {
  if (bindHost === '0.0.0.0' || bindHost === '::' || bindHost === '' || isLoopbackHost(bindHost)) return '127.0.0.1';
  return bindHost.replace(/^\[|\]$/g, '');
}

export function probeHealth(bindHost: string, port: number, timeoutMs = 2_000): Promise<HealthProbe> {
  const host = probeHost(bindHost);
  const hostHeader = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const url = `http://${hostHeader}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: HealthProbe): void => {
      if (done) return;
      done = true;
      resolve(r);
    };
    const req = http.request(
      { host, port, path: '/health', method: 'GET', headers: { host: hostHeader, accept: 'application/json' }, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) {
            res.destroy();
            finish({ kind: 'other', detail: 'answered /health with a large body' });
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          let body: Record<string, unknown> | undefined;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            /* not JSON */
          }
          if (res.statusCode === 200 && body && body.name === PROXY_NAME) {
            finish({
              kind: 'poe-proxy',
              url,
              port,
              pid: typeof body.pid === 'number' ? body.pid : undefined,
              version: typeof body.version === 'string' ? body.version : undefined,
              upstream: typeof body.upstream === 'string' ? body.upstream : undefined,
            });
          } else {
            finish({ kind: 'other', detail: `answered GET /health with HTTP ${res.statusCode}${body ? '' : ' (not JSON)'}` });
          }
        });
        res.on('error', (err) => finish({ kind: 'other', detail: err.message }));
      },
    );
    req.on('timeout', () => {
      req.destroy();
      finish({ kind: 'other', detail: `did not answer GET /health within ${timeoutMs} ms` });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') finish({ kind: 'nothing', detail: 'connection refused' });
      else finish({ kind: 'other', detail: err.code ?? err.message });
    });
    req.end();
  });
}
