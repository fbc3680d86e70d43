/**
 * Exact token counting with js-tiktoken, guarded against its quadratic byte-pair merge.
 *
 * Runs inside the token worker (never in the extension host's main thread): constructing an encoding
 * takes ~0.5 s of synchronous work and the rank tables weigh megabytes. Ranks are loaded per encoding
 * on first use only.
 *
 * Counting rules:
 * - Special-token strings (`<|endoftext|>` …) are counted as ordinary text and never throw.
 * - Text is counted with `encode(text, [], [])`, unchanged, unless one of its pre-tokenizer pieces is
 *   longer than `MAX_PIECE_BYTES` (or the text is long enough to be worth time-slicing). Then the text is
 *   split at piece boundaries (which does not change the pieces, so the count stays exact) and only the
 *   over-long pieces are cut into chunks of at most `MAX_PIECE_BYTES` bytes, counted one by one.
 *   Worst-case cost is then linear in the input; those chunked pieces may differ from an unbounded merge
 *   by about one token per chunk.
 * - A deadline stops work: the rest of a text is then estimated and the result says so.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import { estimateTokens, MAX_PIECE_BYTES, utf8Length, type EncodingName } from './common';

interface TiktokenRanks {
  pat_str: string;
  special_tokens: Record<string, number>;
  bpe_ranks: string;
}

/** Texts up to this many UTF-16 units with no long run are encoded in one call. */
const FAST_PATH_MAX_CHARS = 8192;
/** In the careful path, ordinary pieces are encoded in segments of about this many UTF-16 units. */
const SEGMENT_CHARS = 8192;

/**
 * Finds any run that could make a pre-tokenizer piece longer than MAX_PIECE_BYTES: such a piece is a run
 * of letters/marks, of punctuation, of whitespace, or of `[\r\n/]` (plus at most four other characters),
 * and has more than MAX_PIECE_BYTES / 3 UTF-16 units. No false negatives; false positives only cost time.
 */
const RUN_UNITS = Math.floor((Math.floor(MAX_PIECE_BYTES / 3) - 4) / 2);
const LONG_RUN = new RegExp(`[\\p{L}\\p{M}]{${RUN_UNITS},}|[^\\s\\p{L}\\p{N}]{${RUN_UNITS},}|\\s{${RUN_UNITS},}|[\\r\\n/]{${RUN_UNITS},}`, 'u');

function loadRanks(name: EncodingName): TiktokenRanks {
  // Literal requires so the bundler includes exactly these two rank files, in the worker bundle only.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const mod: unknown = name === 'cl100k_base' ? require('js-tiktoken/ranks/cl100k_base') : require('js-tiktoken/ranks/o200k_base');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const ranks = ((mod as { default?: TiktokenRanks }).default ?? mod) as TiktokenRanks;
  if (!ranks || typeof ranks.pat_str !== 'string' || typeof ranks.bpe_ranks !== 'string') {
    throw new Error(`js-tiktoken ranks for ${name} have an unexpected shape`);
  }
  return ranks;
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

interface Loaded {
  enc: Tiktoken;
  pattern: RegExp;
}

export function createTokenEngine(): TokenEngine {
  const encodings = new Map<EncodingName, Loaded>();

  function get(name: EncodingName): Loaded {
    let e = encodings.get(name);
    if (!e) {
      const ranks = loadRanks(name);
      e = { enc: new Tiktoken(ranks), pattern: new RegExp(ranks.pat_str, 'gu') };
      encodings.set(name, e);
    }
    return e;
  }

  const encodeLen = (enc: Tiktoken, text: string): number => (text ? enc.encode(text, [], []).length : 0);

  /** Counts a piece longer than MAX_PIECE_BYTES in chunks of at most MAX_PIECE_BYTES bytes. */
  function countLongPiece(enc: Tiktoken, piece: string): number {
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
      }
      bytes += b;
      i += units;
    }
    return total + encodeLen(enc, piece.slice(start));
  }

  function count(text: string, encoding: EncodingName, deadline = Number.POSITIVE_INFINITY): CountOutcome {
    if (!text) return { count: 0, estimated: false };
    const { enc, pattern } = get(encoding);
    if (text.length <= FAST_PATH_MAX_CHARS && !LONG_RUN.test(text)) {
      return { count: encodeLen(enc, text), estimated: false };
    }
    // Careful path: walk the pre-tokenizer pieces; encode ordinary pieces in segments that end on piece
    // boundaries (identical pieces, hence identical tokens), chunk the over-long pieces.
    let total = 0;
    let segStart = 0;
    const re = new RegExp(pattern.source, pattern.flags);
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
        total += countLongPiece(enc, piece);
        segStart = end;
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
