import type { EncodingName } from './common';

/** Per-text cache entry: one count per encoding, and whether that count is an estimate. */
interface Entry {
  o200k_base?: number;
  cl100k_base?: number;
  /** Encodings whose stored count is an estimate (a time budget or a crash stopped the exact count). */
  estimated?: EncodingName[];
}

/** Fixed per-entry weight so that many tiny texts are bounded too. */
export const ENTRY_OVERHEAD_CHARS = 32;

/**
 * Token counts keyed by the text itself, least recently used first, bounded by the total length of the
 * texts it holds (plus a small per-entry overhead). The text is the Map key: a lookup hashes and compares
 * the string, no copy and no concatenation.
 */
export class TokenCountCache {
  private readonly map = new Map<string, Entry>();
  private chars = 0;
  evictions = 0;

  constructor(readonly maxChars: number) {}

  get size(): number {
    return this.map.size;
  }

  get totalChars(): number {
    return this.chars;
  }

  /** The cached count (exact or estimated), refreshing the entry's recency. */
  get(text: string, encoding: EncodingName): number | undefined {
    const e = this.map.get(text);
    if (!e) return undefined;
    const v = e[encoding];
    if (v === undefined) return undefined;
    this.map.delete(text);
    this.map.set(text, e);
    return v;
  }

  isEstimate(text: string, encoding: EncodingName): boolean {
    return this.map.get(text)?.estimated?.includes(encoding) ?? false;
  }

  set(text: string, encoding: EncodingName, count: number, estimated = false): void {
    const weight = text.length + ENTRY_OVERHEAD_CHARS;
    if (weight > this.maxChars) return;
    let e = this.map.get(text);
    if (e) {
      this.map.delete(text);
      if (!estimated && e.estimated) {
        e.estimated = e.estimated.filter((x) => x !== encoding);
        if (e.estimated.length === 0) delete e.estimated;
      }
    } else {
      e = {};
      this.chars += weight;
    }
    if (estimated && !(e[encoding] !== undefined && !e.estimated?.includes(encoding))) {
      // Never let an estimate overwrite an exact count.
      e.estimated = [...(e.estimated ?? []).filter((x) => x !== encoding), encoding];
      e[encoding] = count;
    } else if (!estimated) {
      e[encoding] = count;
    }
    this.map.set(text, e);
    this.evict();
  }

  clear(): void {
    this.map.clear();
    this.chars = 0;
  }

  private evict(): void {
    if (this.chars <= this.maxChars) return;
    for (const key of this.map.keys()) {
      if (this.chars <= this.maxChars) break;
      this.map.delete(key);
      this.chars -= key.length + ENTRY_OVERHEAD_CHARS;
      this.evictions++;
    }
  }
}
