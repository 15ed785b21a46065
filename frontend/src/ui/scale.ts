/** Pure helpers for the SVG plots (charts.tsx): scales, axis ticks, number formats, summary statistics, outliers. */

/** A linear map from [d0, d1] to [r0, r1]; a zero-width domain maps everything to the middle. */
export function scaleLinear(domain: [number, number], range: [number, number]): (value: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  if (d1 === d0) return () => (r0 + r1) / 2;
  return (value) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0);
}

/** A "nice" step (1, 2 or 5 times a power of ten) that cuts [min, max] into about `count` pieces. */
export function niceStep(min: number, max: number, count = 5): number {
  const span = Math.abs(max - min);
  if (!Number.isFinite(span) || span === 0) return 1;
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  // The thresholds (sqrt 50, sqrt 10, sqrt 2) keep the tick count closest to `count`, as d3 does.
  const nice = fraction >= 7.07 ? 10 : fraction >= 3.16 ? 5 : fraction >= 1.41 ? 2 : 1;
  return nice * power;
}

/** Tick values on multiples of a nice step, from the first multiple >= min to the last <= max. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (min > max) [min, max] = [max, min];
  if (min === max) return [min];
  const step = niceStep(min, max, count);
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const ticks: number[] = [];
  // Round away binary noise (0.30000000000000004) to the step's precision.
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(digits)));
  return ticks;
}

/** [min, max] widened outwards to multiples of a nice step, so the axis ends on a tick. */
export function niceDomain(min: number, max: number, count = 5): [number, number] {
  if (min > max) [min, max] = [max, min];
  if (min === max) return min === 0 ? [0, 1] : [Math.min(0, min), Math.max(0, max)];
  const step = niceStep(min, max, count);
  return [Math.floor(min / step + 1e-9) * step, Math.ceil(max / step - 1e-9) * step];
}

/** Which of `n` evenly spaced categories get a label so that at most `max` labels show (always the first). */
export function labelEvery(n: number, max: number): number[] {
  if (n <= 0) return [];
  const every = Math.max(1, Math.ceil(n / Math.max(1, max)));
  const shown: number[] = [];
  for (let i = 0; i < n; i += every) shown.push(i);
  return shown;
}

/** "Mar 1" for a day bucket, "Mar 1 09:00" for an hour bucket; buckets are UTC. */
export function formatBucket(iso: string, bucket: "hour" | "day"): string {
  const date = new Date(iso);
  const day = date.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  if (bucket === "day") return day;
  const hh = String(date.getUTCHours()).padStart(2, "0");
  return `${day} ${hh}:00`;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Indexes of the values that sit unusually LOW: below `median - max(minGap, k * 1.4826 * MAD)`.
 *
 * The median absolute deviation (scaled to a standard deviation for normal data) keeps one bad
 * labeler from hiding the others; `minGap` keeps a tight team (MAD near 0) from flagging someone a
 * hair under the median. Nulls (nothing measured yet) are never flagged. Needs 3+ measured values.
 */
export function lowOutliers(values: (number | null)[], options: { minGap?: number; k?: number } = {}): Set<number> {
  return outliers(values, -1, options);
}

/** The mirror image of `lowOutliers`: values above `median + max(minGap, k * 1.4826 * MAD)`. */
export function highOutliers(values: (number | null)[], options: { minGap?: number; k?: number } = {}): Set<number> {
  return outliers(values, 1, options);
}

function outliers(values: (number | null)[], side: 1 | -1, { minGap = 0, k = 2.5 }: { minGap?: number; k?: number }): Set<number> {
  const measured = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const flagged = new Set<number>();
  if (measured.length < 3) return flagged;
  const mid = median(measured)!;
  const mad = median(measured.map((v) => Math.abs(v - mid)))!;
  const gap = Math.max(minGap, k * 1.4826 * mad);
  values.forEach((v, i) => {
    if (v !== null && Number.isFinite(v) && side * (v - mid) > gap) flagged.add(i);
  });
  return flagged;
}

/** 0.7333 -> "73.3%"; null -> "—". */
export function formatPercent(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "—" : `${(value * 100).toFixed(digits)}%`;
}

/** A number with at most `digits` decimals, trailing zeros dropped; null -> "—". */
export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return String(Number(value.toFixed(digits)));
}

/** An SVG path through the points, broken at nulls unless `connectGaps` (then nulls are skipped). */
export function linePath(points: ([number, number] | null)[], connectGaps = false): string {
  let path = "";
  let pen = false;
  for (const point of points) {
    if (point === null) {
      if (!connectGaps) pen = false;
      continue;
    }
    path += `${pen ? "L" : "M"}${point[0].toFixed(1)},${point[1].toFixed(1)}`;
    pen = true;
  }
  return path;
}
