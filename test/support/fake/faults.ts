/** Faults a test queues on the fake: error statuses, resets, stalls, broken SSE and JSON, in-stream errors. */
import type { Socket } from 'node:net';
import type { Dialect } from './server';

export type Fault =
  | { kind: 'status'; status: number; message?: string; body?: string; headers?: Record<string, string> }
  | { kind: 'reset-before-headers' }
  | { kind: 'refuse' }
  | { kind: 'stall-before-headers' }
  | { kind: 'reset-mid-stream'; afterChunks: number }
  | { kind: 'stall-mid-stream'; afterChunks: number }
  | { kind: 'garbage-sse' }
  | { kind: 'invalid-json' }
  /** Extra: after `afterChunks` frames, an in-stream error event (`data: {"error":{…}}`, or Anthropic `event: error`), then the stream ends. */
  | { kind: 'error-mid-stream'; afterChunks: number; message?: string };

/** The faults that cut a stream after some frames. */
export type MidStreamFault = Extract<Fault, { afterChunks: number }>;

export function isMidStream(fault: Fault | undefined): fault is MidStreamFault {
  return fault?.kind === 'reset-mid-stream' || fault?.kind === 'stall-mid-stream' || fault?.kind === 'error-mid-stream';
}

interface QueuedFault {
  fault: Fault;
  path: string;
  remaining: number;
}

/** FIFO of faults, each for a path ('*' = any) and a number of requests. */
export class FaultQueue {
  private queued: QueuedFault[] = [];

  add(fault: Fault, path: string, times: number): void {
    this.queued.push({ fault, path, remaining: times });
  }

  /** The fault for a request that just arrived on `path`, consumed once. */
  take(path: string): Fault | undefined {
    for (let i = 0; i < this.queued.length; i++) {
      const q = this.queued[i];
      if (q.path !== '*' && q.path !== path) continue;
      q.remaining -= 1;
      if (q.remaining <= 0) this.queued.splice(i, 1);
      return q.fault;
    }
    return undefined;
  }

  clear(): void {
    this.queued = [];
  }
}

/** What 'garbage-sse' interleaves between the real frames. */
export const GARBAGE_FRAMES = [
  'data: {"id":"truncated json\n\n',
  'this line is not server-sent events\n\n',
  ': a comment line\n\n',
  'data: <html>502 Bad Gateway</html>\n\n',
  'event: bogus\ndata: not json either\n\n',
  'data:\n\n',
];

/** The body 'invalid-json' answers with: a chat completion cut off mid-way. */
export const TRUNCATED_JSON = '{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis';

/** The in-stream error event of 'error-mid-stream', in the dialect's shape. */
export function midStreamErrorFrame(dialect: Dialect, message: string): string {
  return dialect === 'anthropic'
    ? `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`
    : `data: ${JSON.stringify({ error: { message, type: 'server_error', code: null } })}\n\n`;
}

/** Resolves once the socket handed everything buffered to the kernel (or closed). ('drain' only fires after a refused write, so poll.) */
export async function socketFlushed(socket: Socket | null): Promise<void> {
  while (socket && !socket.destroyed && socket.writableLength > 0) await new Promise<void>((r) => setImmediate(r));
}
