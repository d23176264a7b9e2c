import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPrometheus, l4Queries, l7Query, parseRateWindow, parseVectorResponse } from './prometheus.ts';

const recorded = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`testdata/${name}`, import.meta.url), 'utf8'));

describe('parseVectorResponse', () => {
  it('reads the samples of a recorded instant vector', () => {
    const r = parseVectorResponse(recorded('prometheus-l4.json'));
    expect(r.ok && r.samples.length).toBe(5);
    expect(r.ok && r.samples[0]).toMatchObject({
      value: 812.4,
      labels: { reporter: 'destination', source_workload: 'client' },
    });
  });

  it('turns a PromQL error into METRICS_UNAVAILABLE with the message Prometheus gave', () => {
    const r = parseVectorResponse(recorded('prometheus-error.json'));
    expect(r).toMatchObject({ ok: false, code: 'METRICS_UNAVAILABLE' });
    expect(!r.ok && r.message).toContain('parse error');
  });

  it('rejects answers that are not an instant vector', () => {
    for (const body of [null, 'x', { status: 'success', data: { resultType: 'matrix', result: [] } }]) {
      expect(parseVectorResponse(body)).toMatchObject({ ok: false, code: 'METRICS_UNAVAILABLE' });
    }
  });
});

describe('queries', () => {
  it('are Kiali-shaped: ztunnel tcp bytes by reporter, waypoint requests by response code', () => {
    const [sent, received] = l4Queries('1m');
    expect(sent).toContain('rate(istio_tcp_sent_bytes_total{reporter=~"source|destination"}[1m])');
    expect(received).toContain('rate(istio_tcp_received_bytes_total{reporter=~"source|destination"}[1m])');
    expect(l7Query('30s')).toContain('istio_requests_total{reporter="waypoint"}[30s]');
    expect(l7Query('30s')).toContain('response_code');
  });

  it('accept only a Prometheus duration as the rate window', () => {
    expect(parseRateWindow(undefined)).toBe('1m');
    expect(parseRateWindow('5m')).toBe('5m');
    expect(parseRateWindow('1m]) or vector(1')).toBeUndefined();
  });
});

describe('httpPrometheus', () => {
  const server = createServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '';
    if (q === 'bad') {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify(recorded('prometheus-error.json')));
    } else if (q === 'html') {
      res.writeHead(502).end('<html>bad gateway</html>');
    } else {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(recorded('prometheus-l7.json')));
    }
  });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise(r => server.close(r));
  });

  it('queries /api/v1/query and parses the answer', async () => {
    const r = await httpPrometheus({ url, timeoutMs: 2000 }).query('up');
    expect(r.ok && r.samples.length).toBe(2);
  });

  it('reports an HTTP error, a non-JSON answer and an unreachable server as METRICS_UNAVAILABLE', async () => {
    const p = httpPrometheus({ url, timeoutMs: 2000 });
    expect(await p.query('bad')).toMatchObject({ ok: false, code: 'METRICS_UNAVAILABLE' });
    expect(await p.query('html')).toMatchObject({ ok: false, message: expect.stringContaining('HTTP 502') });
    const down = await httpPrometheus({ url: 'http://127.0.0.1:1', timeoutMs: 2000 }).query('up');
    expect(down).toMatchObject({ ok: false, message: expect.stringContaining('cannot reach Prometheus') });
  });
});
