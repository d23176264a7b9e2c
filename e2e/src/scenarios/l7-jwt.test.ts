// Cluster tier: end-user JWT through a waypoint (issue 20, scenario 8's JWT half) on a 2-node local
// cluster (name `jwtclstr`: the assigned `jwtcluster` is longer than the 8
// characters a cluster name may have; slot 112), one cluster shared by the file. The namespace's Services
// use the waypoint istiod deploys for the Gateway `waypoint`; a RequestAuthentication with an
// inline JWKS and AuthorizationPolicies with `requestPrincipals` and a `request.auth.claims[...]`
// condition target the Service `echo`. The tokens are signed here with `jose`.
//
// What users see: no token 403 (RBAC: no principal), a token that does not verify 401 (jwt_authn),
// a good token 200; the claim rule admits only the matching group; `WaypointAccepted=True` on the
// AuthorizationPolicy. A second issuer's `jwksUri` is served on loopback inside istiod's own pod
// network namespace (python3's http.server): its tokens get 401 while nothing serves it (istiod
// inlines an empty key set), 200 once istiod fetched it.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { getInNetns } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { requestBatch, type BatchResult } from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { echoPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'jwt';
const ISSUER = 'https://issuer.jwt.test';
const REMOTE_ISSUER = 'https://remote-issuer.jwt.test';
/** The JWKS server for `jwksUri`: on loopback inside istiod's own pod network namespace. */
const JWKS_PORT = 18_999;
const scenario = new ScenarioContext<MeshPod>('jwt');
const { kube, pod } = scenario;
const url = `http://echo.${NS}.svc.cluster.local/`;
const AP_PATH = `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`;
const RA_PATH = `/apis/security.istio.io/v1/namespaces/${NS}/requestauthentications`;

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

let signing: CryptoKey;
let other: CryptoKey;
let jwk: JWK;

async function token(
  claims: Record<string, unknown>,
  options: { key?: CryptoKey; expiresAt?: number; issuer?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(options.issuer ?? ISSUER)
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? Math.floor(Date.now() / 1000) + 3600)
    .sign(options.key ?? signing);
}

function send(count: number, bearer?: string): Promise<BatchResult> {
  return requestBatch(pod('client'), url, count, {
    ...(bearer === undefined ? {} : { headers: { authorization: `Bearer ${bearer}` } }),
  });
}

/** Waits until one request with `bearer` answers `code` (the config reached the waypoint). */
async function answers(what: string, code: number, bearer?: string): Promise<void> {
  await waitFor(what, async () => ((await send(1, bearer)).codes.get(code) === 1 ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 500,
  });
}

describe('end-user JWT through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    signing = pair.privateKey;
    other = (await generateKeyPair('RS256')).privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    await startWaypointMesh(scenario, {
      cluster: { name: 'jwtclstr', slot: 112 },
      namespace: NS,
      serviceAccounts: ['client', 'echo'],
      pods: [
        [
          'echo',
          echoPod('echo', { namespace: NS, node: 'node-1', serviceAccount: 'echo', containerPorts: [8080] }),
        ],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('ALLOW by requestPrincipals: no token 403, a token that does not verify 401, a good token 200', async () => {
    const c = kube().client;
    await c.create(RA_PATH, {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: NS },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
        jwtRules: [{ issuer: ISSUER, jwks: JSON.stringify({ keys: [jwk] }) }],
      },
    });
    await c.create(AP_PATH, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'require-jwt', namespace: NS },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
        action: 'ALLOW',
        rules: [{ from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }] }],
      },
    });
    const good = await token({ group: 'admins' });
    // istiod says where the policy applies, as upstream: WaypointAccepted=True on the policy.
    const accepted = await waitFor(
      'WaypointAccepted=True on the AuthorizationPolicy',
      async () => {
        const ap = await c.get<{ status?: { conditions?: Condition[] } }>(`${AP_PATH}/require-jwt`);
        const cond = ap.status?.conditions?.find(x => x.type === 'WaypointAccepted');
        return cond?.status === 'True' ? cond : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(accepted).toMatchObject({ reason: 'Accepted', message: `bound to ${NS}/waypoint` });
    await answers('a request without a token denied by the waypoint (403)', 403);
    await answers('a good token admitted (200)', 200, good);

    expect((await send(10)).codes.get(403)).toBe(10);
    expect((await send(10, good)).codes.get(200)).toBe(10);
    // Signed by another key, expired, or not a JWT at all: jwt_authn rejects it before RBAC.
    expect((await send(5, await token({ group: 'admins' }, { key: other }))).codes.get(401)).toBe(5);
    const expired = await token({ group: 'admins' }, { expiresAt: Math.floor(Date.now() / 1000) - 600 });
    expect((await send(5, expired)).codes.get(401)).toBe(5);
    expect((await send(5, 'not-a-jwt')).codes.get(401)).toBe(5);
  }, 180_000);

  it('a request.auth.claims[group] condition admits only the matching group (403 for the others)', async () => {
    await kube().client.mergePatch(`${AP_PATH}/require-jwt`, {
      spec: {
        rules: [
          {
            from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }],
            when: [{ key: 'request.auth.claims[group]', values: ['admins'] }],
          },
        ],
      },
    });
    const admin = await token({ group: 'admins' });
    const user = await token({ group: 'users' });
    await answers('a token of group users denied (403)', 403, user);
    expect((await send(10, admin)).codes.get(200)).toBe(10);
    expect((await send(10, user)).codes.get(403)).toBe(10);
    expect((await send(5)).codes.get(403)).toBe(5);
    expect((await send(5, await token({ group: 'admins' }, { key: other }))).codes.get(401)).toBe(5);
  }, 180_000);
  it('a jwksUri is fetched by istiod and inlined: its tokens get 401 while the JWKS cannot be fetched, 200 once it is served', async () => {
    const c = kube();
    const remote = await generateKeyPair('RS256', { extractable: true });
    const remoteJwk = { ...(await exportJWK(remote.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const pods = await c.client.get<{ items: { metadata?: { uid?: string } }[] }>(
      '/api/v1/namespaces/istio-system/pods?labelSelector=app%3Distiod',
    );
    expect(pods.items).toHaveLength(1);
    const istiodNetns = podNetnsName(c.layout, pods.items[0]?.metadata?.uid ?? '');
    await c.client.create(RA_PATH, {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt-remote', namespace: NS },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
        jwtRules: [
          { issuer: REMOTE_ISSUER, jwksUri: `http://127.0.0.1:${JWKS_PORT}/jwks.json`, timeout: '2s' },
        ],
      },
    });
    await c.client.mergePatch(`${AP_PATH}/require-jwt`, {
      spec: {
        rules: [
          {
            from: [{ source: { requestPrincipals: [`${ISSUER}/*`, `${REMOTE_ISSUER}/*`] } }],
            when: [{ key: 'request.auth.claims[group]', values: ['admins'] }],
          },
        ],
      },
    });
    // istiod tried the URI and failed (nothing listens yet): it says so in its metrics.
    await waitFor(
      'a failed JWKS fetch counted by istiod',
      async () => {
        const text = (await getInNetns(istiodNetns, 15014, '/metrics')) ?? '';
        const m = /^pilot_jwks_resolver_network_fetch_fail_total (\d+)/m.exec(text);
        return m !== null && Number(m[1]) > 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const remoteToken = await token({ group: 'admins' }, { key: remote.privateKey, issuer: REMOTE_ISSUER });
    // Nothing serves the JWKS yet: istiod inlines an empty key set, so the token is rejected
    // (fail closed) while the inline issuer's tokens keep working.
    await answers(
      'a token of the remote issuer rejected while its JWKS is unreachable (401)',
      401,
      remoteToken,
    );
    expect((await send(5, await token({ group: 'admins' }))).codes.get(200)).toBe(5);
    expect((await send(5, remoteToken)).codes.get(401)).toBe(5);

    const dir = await mkdtemp(join(tmpdir(), 'jwks-'));
    await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [remoteJwk] }));
    const server = spawn(
      'ip',
      [
        'netns',
        'exec',
        istiodNetns,
        'python3',
        '-m',
        'http.server',
        String(JWKS_PORT),
        '--bind',
        '127.0.0.1',
        '--directory',
        dir,
      ],
      { stdio: 'ignore' },
    );
    try {
      // istiod retries with a backoff (1 s doubling), fetches, and pushes the keys to the waypoint.
      await waitFor(
        'the remote issuer’s token admitted once istiod fetched its JWKS (200)',
        async () => ((await send(1, remoteToken)).codes.get(200) === 1 ? true : undefined),
        { timeoutMs: 120_000, intervalMs: 1_000 },
      );
      expect((await send(10, remoteToken)).codes.get(200)).toBe(10);
      const forged = await token({ group: 'admins' }, { key: other, issuer: REMOTE_ISSUER });
      expect((await send(5, forged)).codes.get(401)).toBe(5);
      const user = await token({ group: 'users' }, { key: remote.privateKey, issuer: REMOTE_ISSUER });
      expect((await send(5, user)).codes.get(403)).toBe(5);
    } finally {
      server.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
