// Cluster tier: end-user JWT through a waypoint (issue 20, scenario 8's JWT half) on a 2-node local
// cluster (name `jwtclstr`: the assigned `jwtcluster` is longer than the 8
// characters a cluster name may have; slot 112), one cluster shared by the file. The namespace's Services
// use the waypoint istiod deploys for the Gateway `waypoint`; a RequestAuthentication with an
// inline JWKS and AuthorizationPolicies with `requestPrincipals` and a `request.auth.claims[...]`
// condition target the Service `echo`. The tokens are signed here with `jose`.
//
// What users see: no token 403 (RBAC: no principal), a token that does not verify 401 (jwt_authn),
// a good token 200; the claim rule admits only the matching group; `WaypointAccepted=True` on the
// AuthorizationPolicy.
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { requestBatch, type BatchResult } from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { echoPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'jwt';
const ISSUER = 'https://issuer.jwt.test';
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
  options: { key?: CryptoKey; expiresAt?: number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(ISSUER)
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
});
