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

/**
 * Bounds one event (its unfinished line plus its data lines so far) so a hostile or broken upstream can
 * make the proxy neither buffer without limit nor spend long on one event. Generous: real events are
 * at most a few KB (a non-streamed answer, bounded separately, can be larger).
 */
export const MAX_SSE_EVENT_BYTES = 16 * 1024 * 1024;

export class SseEventTooLargeError extends Error {
  constructor() {
    super(`Poe sent one stream event larger than ${MAX_SSE_EVENT_BYTES / 1024 / 1024} MiB, so the proxy stopped reading (a broken or hostile upstream)`);
    this.name = 'SseEventTooLargeError';
  }
}

export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  /**
   * The unfinished line, in the pieces it arrived in: only the new chunk is searched for a line end and
   * the pieces are joined once, when the line ends, so one huge line costs linear time, not quadratic.
   */
  private partial: string[] = [];
  private partialChars = 0;
  private dataLines: string[] = [];
  private eventName: string | undefined;
  private pendingChars = 0;

  /** Returns the events completed by this chunk; throws SseEventTooLargeError past the cap. */
  push(chunk: Buffer | string): SseEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      let line = text.slice(start, nl);
      if (this.partial.length) {
        line = this.partial.join('') + line;
        this.partial = [];
        this.partialChars = 0;
      }
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      this.takeLine(line, events);
    }
    if (start < text.length) {
      this.partial.push(start === 0 ? text : text.slice(start));
      this.partialChars += text.length - start;
    }
    if (this.partialChars + this.pendingChars > MAX_SSE_EVENT_BYTES) throw new SseEventTooLargeError();
    return events;
  }

  /** Flushes a final event that had no trailing blank line. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    const rest = this.partial.join('') + this.decoder.end();
    this.partial = [];
    this.partialChars = 0;
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
