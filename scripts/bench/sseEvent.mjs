// Section 6: one huge SSE event (a broken or hostile upstream) through the proxy's SSE parser and
// event aligner, the way the relay feeds them: an 8 MB event in 16 KB chunks. Both must stay linear in
// the event's size (they were quadratic: seconds for this event).
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { median } from './stats.mjs';

const require = createRequire(import.meta.url);

export function hugeEventRuns(supportPath, { runs, eventBytes = 8 * 1024 * 1024, chunkBytes = 16 * 1024 }) {
  const { SseParser, EventAligner } = require(supportPath);
  const chunk = Buffer.alloc(chunkBytes, 'a');
  const head = Buffer.from('data: ');
  const tail = Buffer.from('\n\n');
  const time = (feed) => {
    const t0 = performance.now();
    feed(head);
    for (let sent = 0; sent < eventBytes; sent += chunkBytes) feed(chunk);
    feed(tail);
    return performance.now() - t0;
  };
  const parserMs = [];
  const alignerMs = [];
  for (let r = 0; r < runs; r++) {
    const parser = new SseParser();
    parserMs.push(time((c) => parser.push(c)));
    const aligner = new EventAligner();
    alignerMs.push(time((c) => aligner.push(c)));
  }
  return { eventBytes, chunkBytes, parserMs: median(parserMs), alignerMs: median(alignerMs) };
}
