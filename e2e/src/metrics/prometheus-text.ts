/**
 * Prometheus text exposition format → flat samples (`name{labels} value`), read with
 * `parse-prometheus-text-format`. This file owns only the shaping of the library's output:
 *
 * - The library folds a histogram's or summary's `_bucket`/`_sum`/`_count` lines into one group
 *   and, when they carry labels besides `le`/`quantile`, loses those labels. Every comment line
 *   (`# HELP`, `# TYPE`) is therefore dropped before parsing, so each sample line is read as an
 *   untyped sample with all its labels: the sample list is exactly the lines of the text.
 * - The library keeps the last line only when the text ends with a newline: one is added.
 * - Values are text in the library's output, any token accepted: they become numbers here
 *   (`+Inf`, `-Inf`, `NaN` included), and one that is no number is an error.
 */
import { MeshError } from '@ambient-mesh/errors';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** One Prometheus sample: `name{labels} value`. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export const PrometheusTextErrorCode = {
  /** A line of the text is not a sample, a comment or blank. */
  Invalid: 'METRICS_TEXT_INVALID',
} as const;

/** The text is not in the Prometheus exposition format. */
export class PrometheusTextError extends MeshError {
  constructor(message: string, cause?: unknown) {
    super(PrometheusTextErrorCode.Invalid, message, cause === undefined ? {} : { cause });
  }
}

/** A sample's value; the library takes any token as one, so a value that is no number throws. */
function sampleValue(name: string, text: string): number {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
  }
  const value = text.trim() === '' ? NaN : Number(text);
  if (Number.isNaN(value)) {
    throw new PrometheusTextError(`the value ${JSON.stringify(text)} of ${name} is not a number`);
  }
  return value;
}

/**
 * Parses the Prometheus text format into its samples, in order (comments skipped; label values
 * unescaped; timestamps dropped). Throws {@link PrometheusTextError} on a line that is not a
 * sample, a comment or blank, or whose value is not a number.
 */
export function parsePrometheusText(text: string): MetricSample[] {
  const sampleLines = text
    .split('\n')
    .filter(line => !line.trimStart().startsWith('#'))
    .join('\n');
  let families: parsePrometheusTextFormat.MetricFamily[];
  try {
    families = parsePrometheusTextFormat(sampleLines + '\n');
  } catch (err) {
    throw new PrometheusTextError('the metrics are not in the Prometheus text format', err);
  }
  return families.flatMap(family =>
    family.metrics.map(sample => ({
      name: family.name,
      labels: { ...sample.labels },
      // Without TYPE lines every family is untyped, so every sample has a value.
      value: sampleValue(family.name, 'value' in sample ? sample.value : ''),
    })),
  );
}

/** The sum of the values of the samples named `name` whose labels include `labels`. */
export function sumSamples(
  samples: readonly MetricSample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  return samples
    .filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
