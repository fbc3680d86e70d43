/**
 * Token counting with gpt-tokenizer, guarded against the quadratic cost of byte-pair merging long pieces.
 *
 * Runs inside the token worker (never in the extension host's main thread): loading an encoding takes
 * ~0.1-0.2 s of synchronous work and its rank tables weigh tens of megabytes of heap. Encodings are loaded
 * on first use only.
 *
 * gpt-tokenizer counts the same tokens as js-tiktoken (the bench checks it on its whole corpus), starts ~3×
 * faster with a third of the heap and counts ~10× faster; but its merge, like js-tiktoken's, is quadratic
 * in the length of one pre-tokenizer piece (100,000 letters without a split: ~20 s), so the guard stays.
 *
 * Counting rules:
 * - Special-token strings (`<|endoftext|>` …) are counted as ordinary text and never throw.
 * - Text is counted in one call, unchanged, unless one of its pre-tokenizer pieces is longer than
 *   `MAX_PIECE_BYTES` (or the text is long enough to be worth time-slicing). Then the text is split at piece
 *   boundaries (which does not change the pieces, so the count stays exact) and only the over-long pieces
 *   are cut into chunks of at most `MAX_PIECE_BYTES` bytes, counted one by one. Worst-case cost is then
 *   linear in the input; those chunked pieces may differ from an unbounded merge by about one token per chunk.
 * - A deadline stops work: the rest of a text is then estimated and the result says so.
 */
import { estimateTokens, MAX_PIECE_BYTES, utf8Length, type EncodingName } from './common';

/** One encoding, as the engine uses it. */
export interface Bpe {
  /** Tokens of `text`, special-token strings counted as ordinary text. */
  count(text: string): number;
  /** The encoding's pre-tokenizer split pattern (flags `gu`). */
  pattern: RegExp;
}

/** Loads one encoding (synchronously: it runs in the worker). */
export type BpeLoader = (name: EncodingName) => Bpe;

/** Texts up to this many UTF-16 units with no long run are counted in one call. */
const FAST_PATH_MAX_CHARS = 8192;
/** In the careful path, ordinary pieces are counted in segments of about this many UTF-16 units. */
const SEGMENT_CHARS = 8192;
/**
 * Entries of gpt-tokenizer's per-encoding cache of merged pieces (its default, 100,000, lets a long-lived
 * worker's heap grow by tens of megabytes; a few thousand keep the common words of a conversation).
 */
const MERGE_CACHE_ENTRIES = 4096;

/**
 * Finds any run that could make a pre-tokenizer piece longer than MAX_PIECE_BYTES: such a piece is a run
 * of letters/marks, of punctuation, of whitespace, or of `[\r\n/]` (plus at most four other characters),
 * and has more than MAX_PIECE_BYTES / 3 UTF-16 units. No false negatives; false positives only cost time.
 */
const RUN_UNITS = Math.floor((Math.floor(MAX_PIECE_BYTES / 3) - 4) / 2);
const LONG_RUN = new RegExp(`[\\p{L}\\p{M}]{${RUN_UNITS},}|[^\\s\\p{L}\\p{N}]{${RUN_UNITS},}|\\s{${RUN_UNITS},}|[\\r\\n/]{${RUN_UNITS},}`, 'u');

interface GptTokenizerEncoding {
  countTokens(text: string, options: { disallowedSpecial: Set<string> }): number;
  setMergeCacheSize(size: number): void;
}

/** The worker's tokenizer: gpt-tokenizer's encoding modules, which build their tables when first required. */
export function loadGptTokenizer(name: EncodingName): Bpe {
  // Literal requires so the bundler includes exactly these two encodings, in the worker bundle only.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const enc = (name === 'cl100k_base' ? require('gpt-tokenizer/encoding/cl100k_base') : require('gpt-tokenizer/encoding/o200k_base')) as GptTokenizerEncoding;
  const patterns = require('gpt-tokenizer/encodingParams/constants') as Record<'O200K_TOKEN_SPLIT_REGEX' | 'CL100K_TOKEN_SPLIT_REGEX', RegExp>;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const pattern = name === 'cl100k_base' ? patterns.CL100K_TOKEN_SPLIT_REGEX : patterns.O200K_TOKEN_SPLIT_REGEX;
  if (typeof enc?.countTokens !== 'function' || !(pattern instanceof RegExp)) throw new Error(`gpt-tokenizer's ${name} has an unexpected shape`);
  enc.setMergeCacheSize(MERGE_CACHE_ENTRIES);
  // An empty disallowed set: special-token strings in user text are text (the default throws on them).
  const options = { disallowedSpecial: new Set<string>() };
  return { count: (text) => enc.countTokens(text, options), pattern: new RegExp(pattern.source, 'gu') };
}

export interface CountOutcome {
  count: number;
  /** True when a deadline stopped the exact count and part of the text was estimated. */
  estimated: boolean;
}

export interface TokenEngine {
  /** Exact (bounded) count of one text. `deadline` is a Date.now() value; past it the rest is estimated. */
  count(text: string, encoding: EncodingName, deadline?: number): CountOutcome;
  /** Constructs an encoding now (otherwise done on its first count). Returns the milliseconds it took. */
  load(encoding: EncodingName): number;
  loaded(): EncodingName[];
}

/** The engine on gpt-tokenizer (the worker's), or on another tokenizer (the tests' and the bench's js-tiktoken reference). */
export function createTokenEngine(load: BpeLoader = loadGptTokenizer): TokenEngine {
  const encodings = new Map<EncodingName, Bpe>();

  function get(name: EncodingName): Bpe {
    let e = encodings.get(name);
    if (!e) {
      e = load(name);
      encodings.set(name, e);
    }
    return e;
  }

  const encodeLen = (enc: Bpe, text: string): number => (text ? enc.count(text) : 0);

  /**
   * Counts a piece longer than MAX_PIECE_BYTES in chunks of at most MAX_PIECE_BYTES bytes. Past the deadline
   * it stops between chunks: `done` is how many UTF-16 units of the piece were counted.
   */
  function countLongPiece(enc: Bpe, piece: string, deadline: number): { count: number; done: number } {
    let total = 0;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < piece.length;) {
      const c = piece.charCodeAt(i);
      let units = 1;
      let b: number;
      if (c < 0x80) b = 1;
      else if (c < 0x800) b = 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < piece.length && (piece.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        b = 4;
        units = 2;
      } else b = 3;
      if (bytes + b > MAX_PIECE_BYTES) {
        total += encodeLen(enc, piece.slice(start, i));
        start = i;
        bytes = 0;
        if (Date.now() > deadline) return { count: total, done: start };
      }
      bytes += b;
      i += units;
    }
    return { count: total + encodeLen(enc, piece.slice(start)), done: piece.length };
  }

  function count(text: string, encoding: EncodingName, deadline = Number.POSITIVE_INFINITY): CountOutcome {
    if (!text) return { count: 0, estimated: false };
    const enc = get(encoding);
    if (text.length <= FAST_PATH_MAX_CHARS && !LONG_RUN.test(text)) {
      return { count: encodeLen(enc, text), estimated: false };
    }
    // Careful path: walk the pre-tokenizer pieces; encode ordinary pieces in segments that end on piece
    // boundaries (identical pieces, hence identical tokens), chunk the over-long pieces.
    let total = 0;
    let segStart = 0;
    const re = new RegExp(enc.pattern.source, enc.pattern.flags);
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const piece = m[0];
      if (piece.length === 0) {
        re.lastIndex++; // cannot happen with tiktoken's patterns, but never loop forever
        continue;
      }
      const long = piece.length * 3 > MAX_PIECE_BYTES && utf8Length(piece) > MAX_PIECE_BYTES;
      const end = m.index + piece.length;
      if (long) {
        total += encodeLen(enc, text.slice(segStart, m.index));
        const counted = countLongPiece(enc, piece, deadline);
        total += counted.count;
        segStart = m.index + counted.done;
      } else if (end - segStart >= SEGMENT_CHARS) {
        total += encodeLen(enc, text.slice(segStart, end));
        segStart = end;
      } else continue;
      if (Date.now() > deadline && segStart < text.length) {
        return { count: total + estimateTokens(text.slice(segStart)), estimated: true };
      }
    }
    total += encodeLen(enc, text.slice(segStart));
    return { count: total, estimated: false };
  }

  return {
    count,
    load(encoding) {
      const started = Date.now();
      get(encoding);
      return Date.now() - started;
    },
    loaded: () => [...encodings.keys()],
  };
}
