/**
 * Token-counting worker (worker_threads entry; bundled to dist/tokenWorker.js).
 *
 * Protocol (one message at a time, answered in order):
 *   in:  { id, encoding, texts: string[], budgetMs? }   texts may be empty (just loads the encoding)
 *   out: { id, counts: number[], estimated?: number[] } counts[i] for texts[i]; `estimated` lists the
 *                                                      indices a time budget forced to estimate
 *   out: { id, error: string }                          the request itself was unusable
 * `budgetMs` bounds the counting work of one request (loading an encoding does not count against it).
 */
import { parentPort } from 'node:worker_threads';
import { estimateTokens, isEncodingName } from './common';
import { createTokenEngine } from './engine';

export interface WorkerRequest {
  id: number;
  encoding: string;
  texts: string[];
  budgetMs?: number;
}

export type WorkerResponse = { id: number; counts: number[]; estimated?: number[] } | { id: number; error: string };

const engine = createTokenEngine();

export function handle(req: WorkerRequest): WorkerResponse {
  const id = typeof req?.id === 'number' ? req.id : -1;
  if (!isEncodingName(req?.encoding) || !Array.isArray(req.texts)) return { id, error: 'bad request' };
  engine.load(req.encoding);
  const deadline = typeof req.budgetMs === 'number' && req.budgetMs > 0 ? Date.now() + req.budgetMs : Number.POSITIVE_INFINITY;
  const counts: number[] = [];
  const estimated: number[] = [];
  for (let i = 0; i < req.texts.length; i++) {
    const text = req.texts[i];
    if (typeof text !== 'string') {
      counts.push(0);
      continue;
    }
    if (Date.now() > deadline) {
      counts.push(estimateTokens(text));
      estimated.push(i);
      continue;
    }
    try {
      const r = engine.count(text, req.encoding, deadline);
      counts.push(r.count);
      if (r.estimated) estimated.push(i);
    } catch {
      counts.push(estimateTokens(text));
      estimated.push(i);
    }
  }
  return estimated.length ? { id, counts, estimated } : { id, counts };
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (msg: WorkerRequest) => {
    let res: WorkerResponse;
    try {
      res = handle(msg);
    } catch (err) {
      res = { id: typeof msg?.id === 'number' ? msg.id : -1, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(res);
  });
}
