/**
 * js-tiktoken, the worker's tokenizer before gpt-tokenizer, kept as a reference (a dev dependency): the tests
 * and the bench check that the worker counts exactly what it counted with js-tiktoken.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import { createTokenEngine, type Bpe, type TokenEngine } from '../../src/core/tokens/engine';
import type { EncodingName } from '../../src/core/tokens/common';

const loaded = new Map<EncodingName, Tiktoken>();

/** js-tiktoken's own encoder for `name` (constructed once: ~0.5 s), special-token strings encoded as text. */
export function jsTiktoken(name: EncodingName = 'o200k_base'): Tiktoken {
  let enc = loaded.get(name);
  if (!enc) {
    /* eslint-disable @typescript-eslint/no-require-imports */
    enc = new Tiktoken(name === 'cl100k_base' ? require('js-tiktoken/ranks/cl100k_base') : require('js-tiktoken/ranks/o200k_base'));
    /* eslint-enable @typescript-eslint/no-require-imports */
    loaded.set(name, enc);
  }
  return enc;
}

/** js-tiktoken's count of `text`, with no guard (quadratic on long runs). */
export function jsTiktokenCount(text: string, name: EncodingName = 'o200k_base'): number {
  return jsTiktoken(name).encode(text, [], []).length;
}

function jsTiktokenBpe(name: EncodingName): Bpe {
  /* eslint-disable-next-line @typescript-eslint/no-require-imports */
  const ranks = (name === 'cl100k_base' ? require('js-tiktoken/ranks/cl100k_base') : require('js-tiktoken/ranks/o200k_base')) as { pat_str: string };
  return { count: (text) => jsTiktokenCount(text, name), pattern: new RegExp(ranks.pat_str, 'gu') };
}

/** The worker's engine (same guard, same chunks) on js-tiktoken: what the worker counted before. */
export function jsTiktokenEngine(): TokenEngine {
  return createTokenEngine(jsTiktokenBpe);
}
