/**
 * Writing a relayed stream to the client: the SSE response headers every endpoint sends, and a write
 * that pauses the upstream while the client's socket buffer is full (no unbounded buffering).
 */
import type { IncomingMessage } from 'node:http';

export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
});

export interface WritableSink {
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  write(chunk: string | Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** Writes to the client; when its buffer is full, pauses `up` until it drains (backpressure). */
export function relayWrite(res: WritableSink, data: string | Buffer, up?: IncomingMessage): void {
  if (res.writableEnded || res.destroyed) return;
  if (!res.write(data) && up && !up.isPaused()) {
    up.pause();
    res.once('drain', () => up.resume());
  }
}

/**
 * Length of the prefix of `buf` made of whole SSE events (up to and including the last blank line),
 * so a relay forwards events intact and never leaves a client with half an event if the stream breaks.
 */
export function wholeEventsLength(buf: Buffer): number {
  const lf = buf.lastIndexOf('\n\n');
  const crlf = buf.lastIndexOf('\n\r\n');
  return Math.max(lf >= 0 ? lf + 2 : 0, crlf >= 0 ? crlf + 3 : 0);
}
