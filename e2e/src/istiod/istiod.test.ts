// Cluster tier of istiod (issue 8): our istiod against a real local cluster, observed through a
// delta-xDS client like a ztunnel, and its CA with real pod-bound tokens from TokenRequest.
// Needs root and the Kubernetes binaries (the e2e `test` script builds or reuses them).
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { createZtunnelIdentity, mintServiceAccountToken, type ZtunnelIdentity } from '../upstream/istiod.ts';
import type { DeltaXdsClient } from '../xds-client/delta-client.ts';
import { normalizeSnapshot, snapshotToJson, type NormalizedSnapshot } from '../xds-client/normalize.ts';
import {
  createAuthorizationPolicy,
  createGoldenFixture,
  FIXTURE_POD_NAMES,
  GOLDEN_NS,
  labelNodes,
} from './cluster-fixture.ts';
import {
  compareWithUpstream,
  ourXdsClient,
  runCleanups,
  startIstiodCluster,
  startOurIstiodOn,
  type Cleanup,
} from './istiod-harness.ts';
import { requestCertificate, type OurIstiod } from './our-istiod.ts';

const GOLDEN_FILE = new URL('testdata/golden-wds.json', import.meta.url);
const WORKLOAD = (name: string): string => `Kubernetes//Pod/${GOLDEN_NS}/${name}`;

let cluster: Cluster;
let ours: OurIstiod;
let ztunnel: ZtunnelIdentity;
let podIps = new Map<string, string>();
let nodes: [string, string];
const cleanups: Cleanup[] = [];

function newClient(options: { resume?: DeltaXdsClient } = {}): DeltaXdsClient {
  return ourXdsClient(
    ours,
    ztunnel,
    cleanups,
    options.resume === undefined
      ? {}
      : { resume: options.resume.resumeState(), resumeVersions: 'recorded' as const },
  );
}

/** The part of a snapshot the fixture owns: namespace `golden` and the converted STRICT policy. */
function goldenPart(client: DeltaXdsClient): NormalizedSnapshot {
  const ipAliases = new Map([...podIps].map(([name, ip]) => [ip, `pod:${GOLDEN_NS}/${name}`]));
  const all = normalizeSnapshot(client, { ipAliases });
  const inGolden = (name: string): boolean =>
    name.startsWith(`${GOLDEN_NS}/`) || name.startsWith(`Kubernetes//Pod/${GOLDEN_NS}/`);
  const pick = (m: NormalizedSnapshot['addresses']): NormalizedSnapshot['addresses'] =>
    Object.fromEntries(Object.entries(m).filter(([name]) => inGolden(name)));
  return {
    addresses: pick(all.addresses),
    authorizations: Object.fromEntries(
      Object.entries(all.authorizations).filter(
        ([name]) => inGolden(name) || name === 'istio-system/istio_converted_static_strict',
      ),
    ),
  };
}

/** True once the client holds every fixture resource with the pods' final readiness. */
function fixtureComplete(client: DeltaXdsClient): boolean {
  for (const name of FIXTURE_POD_NAMES) {
    const w = client.addresses.get(WORKLOAD(name))?.workload;
    if (w === undefined || w.addresses.length === 0) return false;
    if ((w.status === 1) !== (name === 'db-0')) return false;
  }
  const services = ['web', 'api', 'db'].every(s =>
    client.addresses.has(`${GOLDEN_NS}/${s}.${GOLDEN_NS}.svc.cluster.local`),
  );
  const policies = ['allow-web', 'deny-db-port', 'ns-allow'].every(p =>
    client.authorizations.has(`${GOLDEN_NS}/${p}`),
  );
  return services && policies && client.authorizations.has('istio-system/istio_converted_static_strict');
}

describe('istiod on the local cluster', () => {
  beforeAll(async () => {
    cluster = await startIstiodCluster('istiod', 6, cleanups);
    nodes = [cluster.nodes[0]!.name, cluster.nodes[1]!.name];
    await labelNodes(cluster.client, nodes);
    podIps = await createGoldenFixture(cluster.client, nodes);
    ztunnel = await createZtunnelIdentity(cluster.client, nodes[0]);
    ours = await startOurIstiodOn(cluster, 'istiod-e2e-', cleanups);
  }, 900_000);

  afterAll(async () => {
    await runCleanups(cleanups);
  }, 180_000);

  it('serves exactly the golden Address and Authorization resources to a wildcard delta-xDS client', async () => {
    const client = newClient();
    await client.waitFor('the golden fixture', c => fixtureComplete(c), { timeoutMs: 60_000 });
    const actual = goldenPart(client);
    // UPDATE_GOLDEN=1 rewrites the golden file; review its diff before committing it.
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN_FILE, snapshotToJson(actual));
    const golden = JSON.parse(readFileSync(GOLDEN_FILE, 'utf8')) as NormalizedSnapshot;
    expect(actual).toEqual(golden);
    expect(client.decodeErrors).toEqual([]);
  });

  it('issues a certificate to the node account for a pod on its node, with a real pod-bound token', async () => {
    const res = await requestCertificate({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token: ztunnel.token,
      identity: 'spiffe://cluster.local/ns/golden/sa/web',
      impersonate: 'spiffe://cluster.local/ns/golden/sa/web',
    });
    expect(res.ok).toBe(true);
    const chain = res.ok ? res.certChain : [];
    expect(chain.length).toBeGreaterThanOrEqual(2);
    const leaf = new X509Certificate(chain[0]!);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/golden/sa/web');
    expect(chain.at(-1)).toBe(ours.rootCert);
  });

  it('refuses an identity with no pod on the caller node, with Unauthenticated', async () => {
    // db-0 (SA golden/db) runs on the other node only.
    const res = await requestCertificate({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token: ztunnel.token,
      identity: 'spiffe://cluster.local/ns/golden/sa/db',
      impersonate: 'spiffe://cluster.local/ns/golden/sa/db',
    });
    expect(res).toMatchObject({ ok: false, code: GrpcStatus.UNAUTHENTICATED });
  });

  it('refuses a token that is not bound to a pod, with Unauthenticated', async () => {
    const token = await mintServiceAccountToken(cluster.client, {
      namespace: 'istio-system',
      serviceAccount: 'ztunnel',
    });
    const res = await requestCertificate({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token,
      identity: 'spiffe://cluster.local/ns/golden/sa/web',
      impersonate: 'spiffe://cluster.local/ns/golden/sa/web',
    });
    expect(res).toMatchObject({ ok: false, code: GrpcStatus.UNAUTHENTICATED });
    expect(res.ok ? '' : res.details).toMatch(/not bound to a pod/);
  });

  it('refuses impersonation by a service account outside CA_TRUSTED_NODE_ACCOUNTS, with Unauthenticated', async () => {
    // api-0 runs on the same node as web-…-abcde, with SA golden/api: pod-bound, but not a node account.
    const api = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${GOLDEN_NS}/pods/api-0`);
    const token = await mintServiceAccountToken(cluster.client, {
      namespace: GOLDEN_NS,
      serviceAccount: 'api',
      boundPod: { name: 'api-0', uid: api.metadata?.uid ?? '' },
    });
    const res = await requestCertificate({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token,
      identity: 'spiffe://cluster.local/ns/golden/sa/web',
      impersonate: 'spiffe://cluster.local/ns/golden/sa/web',
    });
    expect(res).toMatchObject({ ok: false, code: GrpcStatus.UNAUTHENTICATED });
    // The same token without impersonation gets its own identity.
    const own = await requestCertificate({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token,
      identity: 'spiffe://cluster.local/ns/golden/sa/api',
    });
    expect(own.ok).toBe(true);
    if (own.ok) {
      expect(new X509Certificate(own.certChain[0]!).subjectAltName).toBe(
        'URI:spiffe://cluster.local/ns/golden/sa/api',
      );
    }
  });

  it('answers a TTL over 90 days with its own error', async () => {
    const res = await requestCertificate({
      address: ours.xdsAddress,
      rootCert: ours.rootCert,
      token: ztunnel.token,
      identity: 'spiffe://cluster.local/ns/golden/sa/web',
      impersonate: 'spiffe://cluster.local/ns/golden/sa/web',
      ttlSeconds: 91 * 24 * 3600,
    });
    expect(res).toMatchObject({ ok: false, code: GrpcStatus.INVALID_ARGUMENT });
    expect(res.ok ? '' : res.details).toMatch(/TTL/);
  });

  it('pushes a relabelled pod, a new policy, and removed_resources for a deleted pod', async () => {
    const client = newClient();
    await client.waitFor('the golden fixture', c => fixtureComplete(c), { timeoutMs: 60_000 });

    await cluster.client.mergePatch(`/api/v1/namespaces/${GOLDEN_NS}/pods/api-0`, {
      metadata: { labels: { 'service.istio.io/canonical-revision': 'rev3' } },
    });
    await client.waitFor(
      'api-0 relabelled',
      c => c.addresses.get(WORKLOAD('api-0'))?.workload?.canonicalRevision === 'rev3',
    );

    await createAuthorizationPolicy(cluster.client, 'allow-report', {
      selector: { matchLabels: { 'job-name': 'report-28912345' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { namespaces: ['golden'] } }] }],
    });
    await client.waitFor('the new Authorization', c => c.authorizations.get(`${GOLDEN_NS}/allow-report`));
    await client.waitFor('report pod bound to the new policy', c =>
      c.addresses
        .get(WORKLOAD('report-28912345-xyz12'))
        ?.workload?.authorizationPolicies.includes('golden/allow-report'),
    );

    // A pod of its own, so the fixture stays whole for the next tests.
    await cluster.client.create(`/api/v1/namespaces/${GOLDEN_NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'scratch', namespace: GOLDEN_NS },
      spec: {
        nodeName: nodes[1],
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: 'ambient-mesh/shell:0.1.0', command: ['sleep', '86400'] }],
      },
    });
    await client.waitFor(
      'the scratch pod',
      c => (c.addresses.get(WORKLOAD('scratch'))?.workload?.addresses.length ?? 0) > 0,
      { timeoutMs: 60_000 },
    );
    await cluster.client.delete(`/api/v1/namespaces/${GOLDEN_NS}/pods/scratch`);
    const removal = await client.waitFor(
      'removed_resources for the deleted pod',
      c => c.responses.find(r => r.removedResources.includes(WORKLOAD('scratch'))),
      { timeoutMs: 60_000 },
    );
    expect(removal.typeUrl).toBe('type.googleapis.com/istio.workload.Address');
    expect(client.addresses.has(WORKLOAD('scratch'))).toBe(false);
    expect(client.responses.every(r => r.nack === undefined)).toBe(true);
  });

  it('sends a client reconnecting with initial_resource_versions only the difference', async () => {
    const first = newClient();
    await first.waitFor(
      'the current state',
      c =>
        c.synced &&
        c.addresses.has(WORKLOAD('web-7d4b9c-abcde')) &&
        c.authorizations.has(`${GOLDEN_NS}/allow-report`),
    );
    await first.close();

    await cluster.client.mergePatch(`/api/v1/namespaces/${GOLDEN_NS}/pods/web-7d4b9c-abcde`, {
      metadata: { labels: { 'service.istio.io/canonical-revision': 'canary' } },
    });
    const second = newClient({ resume: first });
    await second.waitFor(
      'the relabelled web pod',
      c => c.addresses.get(WORKLOAD('web-7d4b9c-abcde'))?.workload?.canonicalRevision === 'canary',
    );
    const sentInGolden = second.responses
      .flatMap(r => [...r.resourceNames, ...r.removedResources])
      .filter(name => name.includes(`/${GOLDEN_NS}/`) || name.startsWith(`${GOLDEN_NS}/`));
    expect(sentInGolden).toEqual([WORKLOAD('web-7d4b9c-abcde')]);
  });

  it('reports a malformed AuthorizationPolicy with its field path in its status, and leaves the rest alone', async () => {
    const client = newClient();
    await client.waitFor(
      'the current state',
      c => c.synced && c.authorizations.has(`${GOLDEN_NS}/allow-web`),
    );
    const before = goldenPart(client);
    await createAuthorizationPolicy(cluster.client, 'broken', {
      action: 'ALLOW',
      rules: [{ from: [{ source: { ipBlocks: ['not-an-ip'] } }] }],
    });
    interface WithStatus {
      status?: { conditions?: { type: string; reason: string; message: string }[] };
    }
    const condition = await waitFor(
      'the status of golden/broken',
      async () => {
        const ap = await cluster.client.get<WithStatus>(
          `/apis/security.istio.io/v1/namespaces/${GOLDEN_NS}/authorizationpolicies/broken`,
        );
        return ap.status?.conditions?.find(c => c.type === 'ZtunnelAccepted');
      },
      { timeoutMs: 30_000 },
    );
    expect(condition.reason).toBe('Invalid');
    expect(condition.message).toContain('spec.rules[0].from[0].source.ipBlocks[0]');
    // A later valid change is still pushed, and the broken policy never reaches the client.
    await createAuthorizationPolicy(cluster.client, 'after-broken', {
      action: 'ALLOW',
      rules: [{ from: [{ source: { namespaces: ['golden'] } }] }],
    });
    await client.waitFor('the next policy', c => c.authorizations.has(`${GOLDEN_NS}/after-broken`));
    expect(client.authorizations.has(`${GOLDEN_NS}/broken`)).toBe(false);
    const after = goldenPart(client);
    const { [`${GOLDEN_NS}/after-broken`]: added, ...unchanged } = after.authorizations;
    expect(added).toBeDefined();
    expect({ ...after, authorizations: unchanged }).toEqual(before);
    // Leave the state as the differential test expects it.
    for (const name of ['broken', 'after-broken']) {
      await cluster.client.delete(
        `/apis/security.istio.io/v1/namespaces/${GOLDEN_NS}/authorizationpolicies/${name}`,
      );
    }
    await client.waitFor('the policy removal', c => !c.authorizations.has(`${GOLDEN_NS}/after-broken`));
  });

  it('matches upstream istiod on the same cluster state, except the documented differences', async () => {
    const mine = newClient();
    const settled = (c: DeltaXdsClient): boolean =>
      c.synced &&
      FIXTURE_POD_NAMES.every(n => (c.addresses.get(WORKLOAD(n))?.workload?.addresses.length ?? 0) > 0) &&
      c.authorizations.has(`${GOLDEN_NS}/allow-report`) &&
      !c.addresses.has(WORKLOAD('scratch'));
    await mine.waitFor('our istiod to settle', settled, { timeoutMs: 60_000 });
    const { undocumented, theirsSettled } = await compareWithUpstream({
      cluster,
      ztunnelNodeName: nodes[0],
      ztunnel,
      mine,
      settled,
      workDirPrefix: 'istiod-upstream-',
      cleanups,
    });
    expect(theirsSettled, 'upstream istiod settled').toBe(true);
    expect(undocumented).toEqual([]);
  }, 180_000);
});
