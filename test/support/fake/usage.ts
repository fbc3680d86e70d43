/** Poe's Usage API: the point balance's costs and GET /usage/points_history (most recent first, limit/starting_after, a lag before an entry shows). */
import { performance } from 'node:perf_hooks';

export interface PointsEntry {
  /** Unix time in microseconds. */
  creation_time: number;
  bot_name: string;
  query_id: string;
  usage_type: 'API' | 'Chat' | 'Canvas App' | string;
  cost_points: number;
}

export type CostFn = (req: { model: string; promptTokens: number; completionTokens: number }) => number;

/** 1 + ceil(prompt / 2) + 2 × completion. */
export function defaultCostPoints(req: { model: string; promptTokens: number; completionTokens: number }): number {
  return 1 + Math.ceil(req.promptTokens / 2) + 2 * req.completionTokens;
}

interface StoredPoints {
  entry: PointsEntry;
  visibleAt: number;
}

export interface PointsPage {
  has_more: boolean;
  length: number;
  data: PointsEntry[];
}

/** The points_history entries, each visible `lagMs` after it was recorded. */
export class PointsHistory {
  private points: StoredPoints[] = [];
  private lastMicros = 0;

  constructor(private readonly lagMs: number) {}

  /** Strictly increasing microseconds, so two entries never share a creation_time. */
  private nowMicros(): number {
    const t = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    this.lastMicros = Math.max(t, this.lastMicros + 1);
    return this.lastMicros;
  }

  /** Books a generation, stamped now, visible after the lag. */
  record(entry: Omit<PointsEntry, 'creation_time'>): void {
    this.points.push({ entry: { creation_time: this.nowMicros(), ...entry }, visibleAt: Date.now() + this.lagMs });
  }

  /** All entries (visible or not), oldest first (append order). Copies. */
  all(): PointsEntry[] {
    return this.points.map((p) => ({ ...p.entry }));
  }

  clear(): void {
    this.points = [];
  }

  /** A page as GET /usage/points_history answers it, or the 400 message for a bad `limit`. */
  page(query: URLSearchParams): PointsPage | string {
    const rawLimit = query.get('limit');
    const limit = rawLimit === null ? 20 : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) return `limit must be an integer between 1 and 100, got ${rawLimit}`;
    const now = Date.now();
    const visible = this.points
      .filter((p) => p.visibleAt <= now)
      .map((p) => p.entry)
      .sort((a, b) => b.creation_time - a.creation_time);
    let list = visible;
    const after = query.get('starting_after');
    if (after !== null && after !== '') {
      const idx = visible.findIndex((e) => e.query_id === after);
      list = idx >= 0 ? visible.slice(idx + 1) : [];
    }
    const page = list.slice(0, limit).map((e) => ({ ...e }));
    return { has_more: list.length > limit, length: page.length, data: page };
  }
}
