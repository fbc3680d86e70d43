/**
 * Incremental Server-Sent Events parser: feed it bytes as they arrive, get whole events back.
 * Handles events split across TCP chunks, CRLF line ends and multi-byte UTF-8 split mid-character.
 */
import { StringDecoder } from 'node:string_decoder';

export interface SseEvent {
  /** `event:` field, if any (Responses and Anthropic streams use it). */
  event?: string;
  /** Joined `data:` lines. */
  data: string;
}

/** Bounds one event so a hostile or broken upstream cannot make the proxy buffer without limit. */
const MAX_EVENT_CHARS = 16 * 1024 * 1024;

export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';
  private dataLines: string[] = [];
  private eventName: string | undefined;
  private pendingChars = 0;

  /** Returns the events completed by this chunk. */
  push(chunk: Buffer | string): SseEvent[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      if (nl === -1) break;
      let line = this.buffer.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      this.takeLine(line, events);
    }
    this.buffer = start === 0 ? this.buffer : this.buffer.slice(start);
    if (this.buffer.length + this.pendingChars > MAX_EVENT_CHARS) {
      throw new Error(`upstream sent an SSE event larger than ${MAX_EVENT_CHARS} characters`);
    }
    return events;
  }

  /** Flushes a final event that had no trailing blank line. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    const rest = this.buffer + this.decoder.end();
    this.buffer = '';
    for (const line of rest.split(/\r?\n/)) this.takeLine(line, events);
    this.takeLine('', events);
    return events;
  }

  private takeLine(line: string, events: SseEvent[]): void {
    if (line === '') {
      if (this.dataLines.length > 0) {
        events.push({ event: this.eventName, data: this.dataLines.join('\n') });
      }
      this.dataLines = [];
      this.eventName = undefined;
      this.pendingChars = 0;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.dataLines.push(value);
      this.pendingChars += value.length;
    } else if (field === 'event') {
      this.eventName = value;
    }
    // `id:` and `retry:` are irrelevant to a relay.
  }
}

/** Serialises one SSE data event. */
export function sseData(data: string, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${data}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';
export const SSE_PING = ': ping\n\n';
