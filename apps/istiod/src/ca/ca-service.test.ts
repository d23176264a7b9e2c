import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { createWorkloadCsr, SpiffeId } from '@ambient-mesh/spiffe-certs';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { toStruct, type ca } from '@ambient-mesh/xds-types';
import type { TokenReviewer, TokenReviewStatus } from '../auth/token-review.ts';
import { silentLogger, createRegistry } from '@ambient-mesh/runtime';
import { createMetrics } from '../metrics.ts';
import { makePod } from '../testing/fixtures.ts';
import { CaService, type PodLookup } from './ca-service.ts';
import type { Pod } from '../kube/objects.ts';

const ztunnelA = makePod({
  name: 'ztunnel-a',
  namespace: 'istio-system',
  node: 'node-a',
  ip: '10.0.0.2',
  serviceAccount: 'ztunnel',
});
const appA = makePod({
  name: 'app-a',
  namespace: 'apps',
  node: 'node-a',
  ip: '10.0.1.2',
  serviceAccount: 'app',
});
const appB = makePod({
  name: 'app-b',
  namespace: 'apps',
  node: 'node-b',
  ip: '10.0.2.2',
  serviceAccount: 'other',
});

function lookup(pods: Pod[]): PodLookup {
  return {
    getPod: (ns, name) => pods.find(p => p.metadata?.namespace === ns && p.metadata.name === name),
    podsOnNode: node => pods.filter(p => p.spec?.nodeName === node),
  };
}

/** Tokens are "<ns>:<sa>[:<pod>:<uid>]"; anything else is rejected. */
const reviewer: TokenReviewer = token => {
  const [ns, sa, pod, uid] = token.split(':');
  if (ns === undefined || sa === undefined)
    return Promise.resolve({ authenticated: false, error: 'bad token' });
  const res: TokenReviewStatus = {
    authenticated: true,
    username: `system:serviceaccount:${ns}:${sa}`,
    audiences: ['istio-ca'],
    ...(pod !== undefined
      ? {
          extra: {
            'authentication.kubernetes.io/pod-name': [pod],
            'authentication.kubernetes.io/pod-uid': [uid ?? ''],
          },
        }
      : {}),
  };
  return Promise.resolve(res);
};

async function setup(): Promise<{ service: CaService; csr: string }> {
  const service = new CaService({
    signer: await createTestCa(),
    reviewer,
    audiences: ['istio-ca'],
    trustedNodeAccounts: [{ namespace: 'istio-system', serviceAccount: 'ztunnel' }],
    pods: lookup([ztunnelA, appA, appB]),
    trustDomain: 'cluster.local',
    maxTtlSeconds: 90 * 86_400,
    metrics: createMetrics({ registry: createRegistry() }),
    logger: silentLogger(),
  });
  const csr = await createWorkloadCsr(SpiffeId.parse('spiffe://cluster.local/ns/x/sa/ignored'));
  return { service, csr: csr.csrPem };
}

function request(csr: string, impersonate?: string, ttl = 86_400): ca.IstioCertificateRequest {
  return {
    csr,
    validityDuration: ttl,
    metadata: impersonate === undefined ? null : toStruct({ ImpersonatedIdentity: impersonate }),
  };
}

const ZT_TOKEN = 'Bearer istio-system:ztunnel:ztunnel-a:uid-ztunnel-a';

describe('CaService.createCertificate', () => {
  it('issues a node proxy a certificate for a pod on its node, chain leaf first and roots last', async () => {
    const { service, csr } = await setup();
    const res = await service.createCertificate(
      ZT_TOKEN,
      request(csr, 'spiffe://cluster.local/ns/apps/sa/app'),
    );
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(res.identity).toBe('spiffe://cluster.local/ns/apps/sa/app');
    expect(res.certChain.length).toBeGreaterThanOrEqual(2);
    const leaf = new X509Certificate(res.certChain[0]!);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/apps/sa/app');
    const root = new X509Certificate(res.certChain.at(-1)!);
    expect(root.ca).toBe(true);
  });

  it('issues a caller its own identity without impersonation, ignoring the CSR SAN', async () => {
    const { service, csr } = await setup();
    const res = await service.createCertificate('Bearer apps:app:app-a:uid-app-a', request(csr));
    expect(res.ok && new X509Certificate(res.certChain[0]!).subjectAltName).toBe(
      'URI:spiffe://cluster.local/ns/apps/sa/app',
    );
  });

  it.each([
    ['an identity with no pod on the caller node', ZT_TOKEN, 'spiffe://cluster.local/ns/apps/sa/other'],
    ['a token that is not pod-bound', 'Bearer istio-system:ztunnel', 'spiffe://cluster.local/ns/apps/sa/app'],
    [
      'a service account outside the trusted list',
      'Bearer apps:app:app-a:uid-app-a',
      'spiffe://cluster.local/ns/apps/sa/app',
    ],
    [
      'a pod UID that does not match',
      'Bearer istio-system:ztunnel:ztunnel-a:stale',
      'spiffe://cluster.local/ns/apps/sa/app',
    ],
    ['a foreign trust domain', ZT_TOKEN, 'spiffe://evil.example/ns/apps/sa/app'],
    ['a rejected token', 'Bearer garbage', 'spiffe://cluster.local/ns/apps/sa/app'],
    ['no token at all', undefined, 'spiffe://cluster.local/ns/apps/sa/app'],
  ])('refuses %s with Unauthenticated', async (_name, token, identity) => {
    const { service, csr } = await setup();
    const res = await service.createCertificate(token, request(csr, identity));
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.code).toBe(status.UNAUTHENTICATED);
    expect(res.error.code).toBe('ISTIOD_UNAUTHENTICATED');
  });

  it('gives a TTL over 90 days its own error', async () => {
    const { service, csr } = await setup();
    const res = await service.createCertificate(
      ZT_TOKEN,
      request(csr, 'spiffe://cluster.local/ns/apps/sa/app', 91 * 86_400),
    );
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.code).toBe(status.INVALID_ARGUMENT);
    expect(res.error.code).toBe('ISTIOD_CERT_TTL_TOO_LONG');
  });

  it('refuses impersonation when no node account is trusted', async () => {
    const { csr } = await setup();
    const service = new CaService({
      signer: await createTestCa(),
      reviewer,
      audiences: ['istio-ca'],
      trustedNodeAccounts: [],
      pods: lookup([ztunnelA, appA]),
      trustDomain: 'cluster.local',
      maxTtlSeconds: 90 * 86_400,
      metrics: createMetrics({ registry: createRegistry() }),
      logger: silentLogger(),
    });
    const res = await service.createCertificate(
      ZT_TOKEN,
      request(csr, 'spiffe://cluster.local/ns/apps/sa/app'),
    );
    expect(!res.ok && res.code).toBe(status.UNAUTHENTICATED);
  });
});
