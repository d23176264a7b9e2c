/**
 * istiod's JWKS resolver against a real HTTP server on loopback: the first fetch, rotation on
 * refresh, bounded timeouts, failures (logged, retried, fail-closed before any success, the last
 * good key set kept after one), and the drop of URIs no policy uses.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemTimers } from '@ambient-mesh/runtime';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { FAIL_CLOSED_JWKS, JwksResolver } from './jwks-resolver.ts';
import { until as untilWithin } from '@ambient-mesh/kube/testing';

const KEYS_A = JSON.stringify({ keys: [{ kty: 'oct', k: 'YWFh', kid: 'a' }] });
const KEYS_B = JSON.stringify({ keys: [{ kty: 'oct', k: 'YmJi', kid: 'b' }] });

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let base = '';
const handlers = new Map<string, Handler>();
const hits = new Map<string, number>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const h = handlers.get(path);
    if (h === undefined) {
      res.writeHead(404).end();
      return;
    }
    h(req, res);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>(resolve =>
    server.close(() => {
      resolve();
    }),
  );
});

const serve =
  (body: string, status = 200): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  };

const resolvers: JwksResolver[] = [];
afterEach(() => {
  for (const r of resolvers.splice(0)) r.close();
});

function resolver(opts: { refreshIntervalMs?: number; inUse?: () => ReadonlySet<string> } = {}) {
  const { logs, records } = captureLogs();
  const changed: string[] = [];
  const fetches: string[] = [];
  const r = new JwksResolver({
    timers: systemTimers,
    logger: logs.root,
    onChange: uri => changed.push(uri),
    onFetch: outcome => fetches.push(outcome),
    ...opts,
  });
  resolvers.push(r);
  return { r, changed, fetches, records };
}

/** The shared poll, with this file's 15 s bound (fetches and refreshes run on real timers). */
const until = <T>(what: string, probe: () => T | undefined): Promise<T> => untilWithin(what, probe, 15_000);

describe('JwksResolver', () => {
  it('answers the fail-closed key set until the first fetch, then the fetched JWKS, and says which URI changed', async () => {
    handlers.set('/first', serve(KEYS_A));
    const { r, changed, fetches } = resolver();
    const uri = `${base}/first`;
    expect(r.keysFor(uri)).toBe(FAIL_CLOSED_JWKS);
    await until('the change', () => (changed.length > 0 ? true : undefined));
    expect(changed).toEqual([uri]);
    expect(r.keysFor(uri)).toBe(KEYS_A);
    expect(fetches).toEqual(['success']);
    // Cached: asking again does not fetch again.
    expect(r.keysFor(uri)).toBe(KEYS_A);
    expect(hits.get('/first')).toBe(1);
  });

  it('picks up a rotated key set on refresh (and only a different one is a change)', async () => {
    let body = KEYS_A;
    handlers.set('/rotate', (_req, res) => {
      res.writeHead(200).end(body);
    });
    const { r, changed } = resolver({ refreshIntervalMs: 200 });
    const uri = `${base}/rotate`;
    r.keysFor(uri);
    await until('the first fetch', () => (r.keysFor(uri) === KEYS_A ? true : undefined));
    // Refreshes with the same body are no change.
    const seen = hits.get('/rotate') ?? 0;
    await until('two more refreshes', () => ((hits.get('/rotate') ?? 0) >= seen + 2 ? true : undefined));
    expect(changed).toEqual([uri]);
    body = KEYS_B;
    await until('the rotated key set', () => (r.keysFor(uri) === KEYS_B ? true : undefined));
    expect(changed).toEqual([uri, uri]);
  });

  it('logs a failed fetch with its code, keeps failing closed, retries, and serves the JWKS once the server recovers', async () => {
    let status = 503;
    handlers.set('/flaky', (_req, res) => {
      res.writeHead(status).end(status === 200 ? KEYS_A : 'unavailable');
    });
    const { r, changed, fetches, records } = resolver();
    const uri = `${base}/flaky`;
    expect(r.keysFor(uri)).toBe(FAIL_CLOSED_JWKS);
    await until('a failure', () => (fetches.includes('failure') ? true : undefined));
    expect(r.keysFor(uri)).toBe(FAIL_CLOSED_JWKS);
    const err = records.find(l => l.code === 'ISTIOD_WAYPOINT_JWKS_FETCH');
    expect(err).toMatchObject({ level: 'error', jwksUri: uri, err: `GET ${uri} answered 503` });
    expect(r.status()).toEqual([{ uri, fetched: false, lastError: `GET ${uri} answered 503` }]);
    status = 200;
    await until('the retry succeeding', () => (r.keysFor(uri) === KEYS_A ? true : undefined));
    expect(changed).toEqual([uri]);
  });

  it('bounds a fetch by the rule’s timeout', async () => {
    handlers.set('/hang', () => {
      // Never answers.
    });
    const { r, records } = resolver();
    const uri = `${base}/hang`;
    r.keysFor(uri, 300);
    const err = await until('the timeout', () => records.find(l => l.code === 'ISTIOD_WAYPOINT_JWKS_FETCH'));
    expect(err.err).toBe(`GET ${uri} timed out after 300 ms`);
    expect(r.keysFor(uri, 300)).toBe(FAIL_CLOSED_JWKS);
  });

  it('refuses a body that is not a JSON Web Key Set', async () => {
    handlers.set('/html', serve('<html>login</html>'));
    handlers.set('/nokeys', serve('{"issuer":"x"}'));
    const { r, records } = resolver();
    r.keysFor(`${base}/html`);
    r.keysFor(`${base}/nokeys`);
    await until('two failures', () =>
      records.filter(l => l.code === 'ISTIOD_WAYPOINT_JWKS_FETCH').length >= 2 ? true : undefined,
    );
    const messages = records.filter(l => l.code === 'ISTIOD_WAYPOINT_JWKS_FETCH').map(l => String(l.err));
    expect(messages.some(m => m.includes('/html: the body is not JSON'))).toBe(true);
    expect(messages).toContain(`GET ${base}/nokeys: the body is not a JSON Web Key Set (no "keys" array)`);
    expect(r.keysFor(`${base}/html`)).toBe(FAIL_CLOSED_JWKS);
    expect(r.keysFor(`${base}/nokeys`)).toBe(FAIL_CLOSED_JWKS);
  });

  it('keeps the last good key set when a refresh fails', async () => {
    let status = 200;
    handlers.set('/keep', (_req, res) => {
      res.writeHead(status).end(KEYS_A);
    });
    const { r, fetches } = resolver({ refreshIntervalMs: 200 });
    const uri = `${base}/keep`;
    r.keysFor(uri);
    await until('the first fetch', () => (r.keysFor(uri) === KEYS_A ? true : undefined));
    status = 500;
    await until('a failed refresh', () => (fetches.includes('failure') ? true : undefined));
    expect(r.keysFor(uri)).toBe(KEYS_A);
    expect(r.status()[0]).toMatchObject({ uri, fetched: true, lastError: `GET ${uri} answered 500` });
  });

  it('drops a URI no RequestAuthentication uses any more at its next refresh', async () => {
    handlers.set('/unused', serve(KEYS_A));
    const used = new Set<string>([`${base}/unused`]);
    const { r } = resolver({ refreshIntervalMs: 200, inUse: () => used });
    const uri = `${base}/unused`;
    r.keysFor(uri);
    await until('the first fetch', () => (r.keysFor(uri) === KEYS_A ? true : undefined));
    used.clear();
    await until('the drop', () => (r.status().length === 0 ? true : undefined));
    // A later use starts over (fail-closed until its own fetch).
    expect(r.keysFor(uri)).toBe(FAIL_CLOSED_JWKS);
  });
});
