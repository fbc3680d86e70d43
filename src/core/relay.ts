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
 * Length of the prefix of `buf` made of whole SSE events (up to and including the last blank line).
 */
export function wholeEventsLength(buf: Buffer): number {
  const lf = buf.lastIndexOf('\n\n');
  const crlf = buf.lastIndexOf('\n\r\n');
  return Math.max(lf >= 0 ? lf + 2 : 0, crlf >= 0 ? crlf + 3 : 0);
}

/**
 * Cuts a byte stream at SSE event boundaries: each chunk is passed on at once up to its last whole
 * event, and only the start of an unfinished event waits for the rest. A client therefore never gets
 * half an event, even when the upstream breaks off mid-event and the proxy appends an error event.
 */
export class EventAligner {
  private pending: Buffer | undefined;

  /** The bytes that can go out now (undefined when the chunk completed no event). */
  push(chunk: Buffer): Buffer | undefined {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const whole = wholeEventsLength(data);
    this.pending = whole < data.length ? Buffer.from(data.subarray(whole)) : undefined;
    if (whole === 0) return undefined;
    return whole === data.length ? data : data.subarray(0, whole);
  }

  /** At the end of the stream: a last event without its blank line, completed. */
  end(): Buffer | undefined {
    const rest = this.pending;
    this.pending = undefined;
    return rest && Buffer.concat([rest, Buffer.from('\n\n')]);
  }
}

/** Calls `beat` every `everyMs` of silence (0 = never); `touch()` on activity pushes the next beat back. */
export class KeepAlive {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly beat: () => void,
  ) {}

  start(): void {
    if (this.everyMs <= 0 || this.timer) return;
    this.timer = setInterval(this.beat, this.everyMs);
    this.timer.unref();
  }

  touch(): void {
    this.timer?.refresh();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
