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

/** A cache slot: the entry, and its place in the recency list (oldest at the head). */
interface Node {
  key: string;
  entry: Entry;
  prev: Node | undefined;
  next: Node | undefined;
}

/**
 * Token counts keyed by the text itself, least recently used first, bounded by the total length of the
 * texts it holds (plus a small per-entry overhead). The text is the Map key: a lookup hashes and compares
 * the string, no copy and no concatenation. Recency is a linked list beside the Map, so a hit costs one
 * lookup: re-inserting the key (delete + set) would compare a long text twice more, and a request's texts
 * are fresh strings from JSON.parse, never the cached key objects (the bench measured 1.3–4.6 ms more per
 * next turn of a 200k-token conversation).
 */
export class TokenCountCache {
  private readonly map = new Map<string, Node>();
  private head: Node | undefined;
  private tail: Node | undefined;
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
    const n = this.map.get(text);
    if (!n) return undefined;
    const v = n.entry[encoding];
    if (v === undefined) return undefined;
    this.touch(n);
    return v;
  }

  isEstimate(text: string, encoding: EncodingName): boolean {
    return this.map.get(text)?.entry.estimated?.includes(encoding) ?? false;
  }

  set(text: string, encoding: EncodingName, count: number, estimated = false): void {
    const weight = text.length + ENTRY_OVERHEAD_CHARS;
    if (weight > this.maxChars) return;
    let n = this.map.get(text);
    if (n) {
      this.touch(n);
      const e = n.entry;
      if (!estimated && e.estimated) {
        e.estimated = e.estimated.filter((x) => x !== encoding);
        if (e.estimated.length === 0) delete e.estimated;
      }
    } else {
      n = { key: text, entry: {}, prev: this.tail, next: undefined };
      if (this.tail) this.tail.next = n;
      else this.head = n;
      this.tail = n;
      this.map.set(text, n);
      this.chars += weight;
    }
    const e = n.entry;
    if (estimated && !(e[encoding] !== undefined && !e.estimated?.includes(encoding))) {
      // Never let an estimate overwrite an exact count.
      e.estimated = [...(e.estimated ?? []).filter((x) => x !== encoding), encoding];
      e[encoding] = count;
    } else if (!estimated) {
      e[encoding] = count;
    }
    this.evict();
  }

  clear(): void {
    this.map.clear();
    this.head = this.tail = undefined;
    this.chars = 0;
  }

  /** Moves `n` to the tail (most recent). */
  private touch(n: Node): void {
    if (n === this.tail) return;
    this.unlink(n);
    n.prev = this.tail;
    n.next = undefined;
    if (this.tail) this.tail.next = n;
    else this.head = n;
    this.tail = n;
  }

  private unlink(n: Node): void {
    if (n.prev) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = n.next = undefined;
  }

  private evict(): void {
    while (this.chars > this.maxChars && this.head) {
      const n = this.head;
      this.unlink(n);
      this.map.delete(n.key);
      this.chars -= n.key.length + ENTRY_OVERHEAD_CHARS;
      this.evictions++;
    }
  }
}
