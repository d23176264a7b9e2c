import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpTracing, parseJaegerTraces, workloadTraces } from './traces.ts';
import { sampleSnapshot } from './testing/fixtures.ts';
import { recordedTracing } from './testing/sources.ts';

const recorded = (): unknown =>
  JSON.parse(readFileSync(new URL('./testdata/jaeger-traces.json', import.meta.url), 'utf8'));
const OPTS = { lookbackSeconds: 3600, limit: 50 };

describe('traces linked to workloads', () => {
  it("links the waypoint's spans to the calling and the called workload", async () => {
    const tracing = recordedTracing();
    const view = await workloadTraces(sampleSnapshot(), tracing, 'sample', 'echo', OPTS);
    // The spans are the waypoint's: asked under its service name.
    expect(tracing.queries).toEqual([{ service: 'waypoint.sample', lookbackSeconds: 3600, limit: 50 }]);
    expect(view.tracingUnavailable).toBeUndefined();
    expect(view.service).toBe('waypoint.sample');
    // Newest first; the unrelated span (unknown addresses) and the malformed one are left out.
    expect(view.spans.map(s => s.spanId)).toEqual(['1a2b3c4d5e6f7081', '00f067aa0ba902b7']);
    const [post, get] = view.spans;
    // By the pod addresses (peer.address, upstream_address).
    expect(get).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      proxy: 'waypoint.sample',
      method: 'GET',
      statusCode: 200,
      error: false,
      durationMs: 4.2,
      source: { namespace: 'sample', name: 'client' },
      destination: { namespace: 'sample', name: 'echo' },
    });
    // Without upstream_address: the Service of upstream_cluster, and the workload it selects.
    expect(post).toMatchObject({
      method: 'POST',
      statusCode: 503,
      error: true,
      source: { namespace: 'sample', name: 'client' },
      destination: { namespace: 'sample', name: 'echo' },
    });
    // The caller sees the same spans from its side: its calls through echo's waypoint.
    const client = await workloadTraces(sampleSnapshot(), tracing, 'sample', 'client', OPTS);
    expect(client.service).toBeUndefined();
    expect(client.services).toEqual(['waypoint.sample']);
    expect(client.spans.map(s => `${s.source?.name} -> ${s.destination?.name}`)).toEqual([
      'client -> echo',
      'client -> echo',
    ]);
    // No waypoint at all: nothing to look up.
    const snap = sampleSnapshot();
    const none = await workloadTraces({ ...snap, gateways: [] }, tracing, 'sample', 'echo', OPTS);
    expect(none.note).toContain('only waypoints produce spans');
  });

  it('says why there are no traces: no backend configured, the backend down or garbage', async () => {
    const none = await workloadTraces(sampleSnapshot(), undefined, 'sample', 'echo', OPTS);
    expect(none.tracingUnavailable).toMatchObject({ code: 'TRACING_NOT_CONFIGURED' });
    expect(none.tracingUnavailable?.message).toContain('TRACING_URL');
    const down = httpTracing({ url: 'http://127.0.0.1:1', timeoutMs: 2000 });
    const v = await workloadTraces(sampleSnapshot(), down, 'sample', 'echo', OPTS);
    expect(v.tracingUnavailable).toMatchObject({ code: 'TRACING_UNAVAILABLE' });
    expect(v.tracingUnavailable?.message).toContain('cannot reach the tracing backend');
    expect(parseJaegerTraces('<html>')).toMatchObject({ ok: false, code: 'TRACING_UNAVAILABLE' });
    expect(parseJaegerTraces({ data: null, errors: [{ code: 400, msg: 'bad service' }] })).toMatchObject({
      ok: false,
      message: 'the tracing backend rejected the query: bad service',
    });
  });

  describe("Jaeger's query API over HTTP", () => {
    let server: Server;
    let url: string;
    const seen: string[] = [];
    beforeAll(async () => {
      server = createServer((req, res) => {
        seen.push(req.url ?? '');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(recorded()));
      });
      await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jaeger`;
    });
    afterAll(async () => {
      await new Promise(r => server.close(r));
    });

    it('asks /api/traces by service, lookback and limit, and parses the recorded answer', async () => {
      const r = await httpTracing({ url, timeoutMs: 5000 }).findTraces({
        service: 'waypoint.sample',
        lookbackSeconds: 600,
        limit: 20,
      });
      expect(seen).toEqual(['/jaeger/api/traces?service=waypoint.sample&lookback=600s&limit=20']);
      expect(r.ok && r.traces.map(t => t.spans.length)).toEqual([1, 2]);
    });
  });
});
