// Small helpers shared by both modes of the istiod benchmark.

export const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
export const ms = (x: number): string => x.toFixed(1);

/** The p-th percentile (nearest rank) of a non-empty sample. */
export function pct(xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
