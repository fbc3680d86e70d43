// Section 3: counting and clipping a 200k-token conversation with the proxy's own counter (worker
// thread + LRU cache): the first time (cold worker, then warm worker with an empty cache) and the next
// turn (one new user message; every other message's count comes from the cache). The tokenizer
// comparison (js-tiktoken vs gpt-tokenizer, speed and agreement) is scripts/bench/tokenizers.mjs.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { makeConversation, runTokenizerBench } from './tokenizers.mjs';
import { median } from './stats.mjs';

const require = createRequire(import.meta.url);

/** A model with a 200k context and the default 4,096-token answer reserve, as chat.ts computes it. */
export const CLIP_LIMIT = 200_000 - 4_096;

export async function clippingRuns(supportPath, { runs, nextTurns = 5, log = () => {} }) {
  const { createTokenCounter, clipMessages } = require(supportPath);
  const conversation = makeConversation({ targetTokens: 200_000 });
  const opts = { limit: CLIP_LIMIT, encoding: 'o200k_base' };
  const results = [];
  for (let r = 0; r < runs; r++) {
    log(`clipping run ${r + 1}/${runs}`);
    // Cold: a fresh counter; its worker starts (and loads the ranks) inside the first clip.
    const counter = createTokenCounter({ timeoutMs: 60_000, idleMs: 0 });
    let t0 = performance.now();
    const first = await clipMessages(conversation, opts, counter);
    const firstColdMs = performance.now() - t0;
    const workerColdStartMs = counter.stats().lastColdStartMs;
    const counted = first.tokens;
    // The next turns: one new user message each (the previous request's messages are all cached).
    // Each request arrives as a new JSON body: its strings are new objects (the cache hashes and compares
    // them again), so every turn is parsed afresh, outside the timing (the server parses the body anyway).
    const next = [];
    let json = JSON.stringify(conversation);
    let last;
    for (let i = 0; i < nextTurns; i++) {
      json = `${json.slice(0, -1)},${JSON.stringify({ role: 'user', content: `Turn ${r}.${i}: now also check the error handling in the upload path and list what is left.` })}]`;
      const convo = JSON.parse(json);
      t0 = performance.now();
      last = await clipMessages(convo, opts, counter);
      next.push(performance.now() - t0);
    }
    const stats = counter.stats();
    await counter.dispose();

    // Warm worker, empty cache: the counting itself, without the worker's start.
    const warm = createTokenCounter({ timeoutMs: 60_000, idleMs: 0 });
    await warm.count(['warm up']);
    t0 = performance.now();
    await clipMessages(conversation, opts, warm);
    const firstWarmWorkerMs = performance.now() - t0;
    await warm.dispose();

    results.push({
      firstColdMs,
      workerColdStartMs,
      firstWarmWorkerMs,
      nextTurnMs: median(next),
      nextTurnMaxMs: Math.max(...next),
      estimatedTexts: stats.estimatedTexts,
      first: {
        tokensAfterClip: counted,
        dropped: first.droppedMessages,
        truncated: first.truncatedMessages,
        kept: first.messages.length,
        clipped: first.clipped,
      },
      next: { dropped: last.droppedMessages, truncated: last.truncatedMessages, kept: last.messages.length },
    });
  }
  return { conversationMessages: conversation.length, limit: CLIP_LIMIT, runs: results };
}

export async function tokenizerComparison(supportPath, log) {
  const m = require(supportPath);
  const modules = {
    tokens: { createTokenCounter: m.createTokenCounter },
    engine: { createTokenEngine: m.createTokenEngine },
    clip: { clipMessages: m.clipMessages },
  };
  return runTokenizerBench({ modules, log });
}
