/**
 * Small, dependency-free pieces shared by the token counter (main thread) and its worker.
 * Nothing here loads a tokenizer: importing this module is free.
 */

export type EncodingName = 'o200k_base' | 'cl100k_base';

export const ENCODINGS: readonly EncodingName[] = ['o200k_base', 'cl100k_base'];

export function isEncodingName(value: unknown): value is EncodingName {
  return value === 'o200k_base' || value === 'cl100k_base';
}

/**
 * Longest pre-tokenizer piece, in UTF-8 bytes, handed to the tokenizer's byte-pair merge as one unit.
 * The merge is quadratic in the piece length (gpt-tokenizer: 100,000 letters without a split take ~20 s;
 * js-tiktoken, used before, was ~20× slower still), so a longer piece (a run of letters, spaces or dashes
 * without a split) is cut into chunks of at most this many bytes: cost per byte stays bounded whatever the
 * input, and ordinary text, whose pieces are words, numbers, punctuation and indentation, never reaches the
 * bound and is counted exactly. Kept at 256 when gpt-tokenizer replaced js-tiktoken so that every count,
 * long runs included, stays what it was. See `scripts/bench/tokenizers.mjs` and `scripts/bench/tokenWorker.mjs`.
 */
export const MAX_PIECE_BYTES = 256;

/** UTF-8 length of a string in bytes (lone surrogates count as the 3 bytes of U+FFFD, as TextEncoder does). */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * A cheap token estimate, used when the worker is unavailable or too slow: ~4 ASCII characters per token,
 * 2 two-byte characters per token, one token per three-byte character (CJK) and two per astral character
 * (emoji). Never more than the UTF-8 byte length, which bounds the real count from above.
 */
export function estimateTokens(text: string): number {
  const n = text.length;
  if (n === 0) return 0;
  let ascii = 0;
  let twoByte = 0;
  let wide = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) ascii++;
    else if (c < 0x800) twoByte++;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        wide += 2;
        i++;
      } else wide++;
    } else wide++;
  }
  const estimate = Math.ceil(ascii / 4 + twoByte / 2) + wide;
  return Math.max(1, Math.min(estimate, utf8Length(text)));
}

/** Estimates for several texts. */
export function estimateAll(texts: readonly string[]): number[] {
  return texts.map((t) => (t ? estimateTokens(t) : 0));
}

/**
 * The encoding used to count tokens for a Poe model: the registry's explicit `encoding` when it names one,
 * cl100k_base for the GPT-3.5 / GPT-4 (not 4o / 4.1 / 4.5) families, otherwise o200k_base.
 * Models from other vendors use their own tokenizers; o200k_base is then an approximation.
 */
export function encodingForModel(poeName: string, explicit?: string): EncodingName {
  if (isEncodingName(explicit)) return explicit;
  const name = (poeName ?? '').toLowerCase();
  if (/^gpt-3\.5(?:$|-)/.test(name) || /^gpt-4(?:$|-(?!o))/.test(name)) return 'cl100k_base';
  return 'o200k_base';
}
