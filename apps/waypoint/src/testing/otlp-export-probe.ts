/**
 * A process for `bundle.test.ts`: exports one empty batch with each OTLP trace exporter to a
 * port nothing listens on and prints each result's error as one JSON line. Run from its sources
 * or bundled by `tools/bundle.mjs`, it tells whether the exporters work in the bundle.
 */
for (const protocol of ['grpc', 'http'] as const) {
  const { OTLPTraceExporter } =
    protocol === 'grpc'
      ? await import('@opentelemetry/exporter-trace-otlp-grpc')
      : await import('@opentelemetry/exporter-trace-otlp-http');
  const exporter = new OTLPTraceExporter({ url: 'http://127.0.0.1:1' });
  const result = await new Promise<{ code: number; error?: Error }>(resolve => {
    exporter.export([], resolve);
  });
  console.log(JSON.stringify({ protocol, code: result.code, error: result.error?.message ?? '' }));
  await exporter.shutdown();
}
