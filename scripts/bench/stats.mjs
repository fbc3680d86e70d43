// Small statistics and formatting helpers shared by the bench modules.

/** Percentile by nearest rank on a copy (p in 0..100). NaN for an empty list. */
export function percentile(values, p) {
  if (!values.length) return Number.NaN;
  const s = Float64Array.from(values).sort();
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx];
}

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (!v.length) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median of one numeric field over several run results (objects), by a dotted path. */
export function medianOf(runs, pathStr) {
  return median(runs.map((r) => pathStr.split('.').reduce((o, k) => (o == null ? undefined : o[k]), r)));
}

export function summarize(latencies) {
  return { n: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.length ? Math.max(...latencies) : Number.NaN };
}

export const fmt = (n, digits = 2) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '—');
export const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : Number.NaN);
export const pass = (ok) => (ok === undefined ? '' : ok ? '✅' : '❌');
