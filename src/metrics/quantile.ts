/* One histogram quantile for every reader of bucket counts (admin metrics, the Memory recorder, the migration gates). */

/** Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank. */
export function histogramQuantile(q: number, cumulative: ReadonlyArray<readonly [number, number]>): number | null {
  const sorted = [...cumulative].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket <= 0 ? le : prevLe + (le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
