/**
 * Writing a relayed stream to the client: the SSE response headers every endpoint sends, and a write
 * that pauses the upstream while the client's socket buffer is full (no unbounded buffering).
 */
import type { IncomingMessage } from 'node:http';
import { MAX_SSE_EVENT_BYTES, SseEventTooLargeError } from '../poe/sse';

export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // No `connection` header: Node sets keep-alive, or close when the client asked for it (and then
  // closes the socket after the stream ends).
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
 * The unfinished event is kept as a list of chunks and only each new chunk (plus the two bytes before
 * it, where a boundary may begin) is searched: linear in the event's size, which is capped at
 * MAX_SSE_EVENT_BYTES (beyond, `push` throws SseEventTooLargeError).
 */
export class EventAligner {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The last (up to) two bytes held: a boundary (`\n\n`, `\n\r\n`) may start there. */
  private tail = Buffer.alloc(0);

  /** The bytes that can go out now (undefined when the chunk completed no event). */
  push(chunk: Buffer): Buffer | undefined {
    const searched = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const found = wholeEventsLength(searched);
    if (found === 0) {
      this.hold(chunk);
      return undefined;
    }
    // The held bytes end no event (else they would have gone out), so the boundary ends in this chunk.
    const whole = found - this.tail.length;
    const out = this.pendingBytes ? Buffer.concat([...this.pending, chunk.subarray(0, whole)]) : whole === chunk.length ? chunk : chunk.subarray(0, whole);
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = Buffer.alloc(0);
    if (whole < chunk.length) this.hold(Buffer.from(chunk.subarray(whole)));
    return out;
  }

  /** At the end of the stream: a last event without its blank line, completed. */
  end(): Buffer | undefined {
    if (this.pendingBytes === 0) return undefined;
    const rest = Buffer.concat([...this.pending, Buffer.from('\n\n')]);
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = Buffer.alloc(0);
    return rest;
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes > MAX_SSE_EVENT_BYTES) {
      this.pending = [];
      this.pendingBytes = 0;
      this.tail = Buffer.alloc(0);
      throw new SseEventTooLargeError();
    }
    this.tail = bytes.length >= 2 ? Buffer.from(bytes.subarray(bytes.length - 2)) : Buffer.concat([this.tail, bytes]).subarray(-2);
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
