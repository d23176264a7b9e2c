/** Kubernetes `matchLabels` selection. */

/**
 * True when every `matchLabels` entry is among `labels`. An absent or empty selector selects
 * every workload.
 */
export function selectorMatches(
  matchLabels: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (matchLabels === undefined) return true;
  for (const key in matchLabels) {
    if (!Object.hasOwn(labels, key) || labels[key] !== matchLabels[key]) return false;
  }
  return true;
}
