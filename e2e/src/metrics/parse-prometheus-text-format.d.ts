// Types for `parse-prometheus-text-format` (the package ships none): what its one function returns.
declare module 'parse-prometheus-text-format' {
  namespace parsePrometheusTextFormat {
    /** One sample of a counter, gauge or untyped family; values are the text as written. */
    interface ValueSample {
      readonly value: string;
      readonly labels?: Readonly<Record<string, string>>;
      readonly timestamp_ms?: string;
    }
    /** The folded samples of a histogram or summary family. */
    interface GroupedSample {
      readonly buckets?: Readonly<Record<string, string>>;
      readonly quantiles?: Readonly<Record<string, string>>;
      readonly count?: string;
      readonly sum?: string;
      readonly labels?: Readonly<Record<string, string>>;
    }
    interface MetricFamily {
      readonly name: string;
      readonly help: string;
      readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
      readonly metrics: readonly (ValueSample | GroupedSample)[];
    }
  }
  /** Parses the Prometheus text exposition format; throws on a line it cannot read. */
  function parsePrometheusTextFormat(text: string): parsePrometheusTextFormat.MetricFamily[];
  export = parsePrometheusTextFormat;
}
