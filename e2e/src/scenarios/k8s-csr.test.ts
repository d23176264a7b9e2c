// Cluster tier: the Kubernetes CSR path, on a 2-node local cluster of its own (name `k8scsr`,
// slot 67). istiod runs as a registration authority (EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API,
// K8S_SIGNER=clusterissuers.cert-manager.io/istio-ca): it checks each workload CSR and has a
// certificates.k8s.io/v1 CertificateSigningRequest signed by a real signer, cert-manager v1.21.2's
// CSR CA controller (ExperimentalCertificateSigningRequestControllers, built by
// tools/install-deps.d/cert-manager.sh, run as image ambient-mesh/cert-manager-signer).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuildScript, waitFor } from '../exec.ts';
import { repoRoot } from '../kubelet/images.ts';
import { MESH_NAMESPACE } from '../mesh/install.ts';
import { httpCode, waitRollout, type MeshPod } from '../mesh/workloads.ts';
import { applyCrds } from '../upstream/crds.ts';
import { CaScenario, clientAndEcho, installMeshReady } from './ca-fixture.ts';
import { makeCaMaterial, type CaMaterial } from './ca-material.ts';

const NS = 'k8scsr-apps';
const scenario = new CaScenario('k8s-csr', NS);
const { log, kube, mtlsToEcho, leaves } = scenario;
const SIGNER = 'clusterissuers.cert-manager.io/istio-ca';
let material: CaMaterial;

interface CsrSeen {
  readonly metadata?: { readonly name?: string };
  readonly spec?: { readonly signerName?: string; readonly username?: string; readonly usages?: string[] };
  readonly status?: {
    readonly certificate?: string;
    readonly conditions?: readonly { readonly type?: string; readonly reason?: string }[];
  };
}
/** Every CertificateSigningRequest state seen while the workloads got their certificates. */
const csrEvents: CsrSeen[] = [];
const stopCsrWatch = new AbortController();
let csrWatch: Promise<void> | undefined;

const pods = new Map<string, MeshPod>();
const rollout = (path: string, want: (st: Record<string, number | undefined>) => boolean): Promise<void> =>
  waitRollout(kube(), path, want);

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('the Kubernetes CSR path (istiod as RA, cert-manager signs) on a 2-node local cluster', () => {
  beforeAll(async () => {
    material = await makeCaMaterial(scenario.dir(), 1);
    const signerDir = await runBuildScript(join(repoRoot(), 'tools', 'install-deps.d', 'cert-manager.sh'), {
      progressPrefix: '[cert-manager]',
      onProgress: l => {
        log(l);
      },
      what: 'cert-manager-signer',
      needs: 'Go and the Go module proxy',
    });
    const c = await scenario.start('k8scsr', 67);
    const crdDir = join(signerDir, 'crds');
    const crds = await applyCrds(
      c.client,
      readdirSync(crdDir).map(f => join(crdDir, f)),
    );
    log(`${String(crds.established.length)} cert-manager CRDs established`);
    // The signer's CA: a ClusterIssuer of type CA whose Secret lives in namespace cert-manager.
    await c.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'cert-manager' },
    });
    const int = material.intermediates[0]!;
    await c.client.create('/api/v1/namespaces/cert-manager/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: 'istio-ca', namespace: 'cert-manager' },
      data: {
        'tls.crt': b64(int.certPem + material.rootPem),
        'tls.key': b64(int.keyPem),
        'ca.crt': b64(material.rootPem),
      },
    });
    await c.client.create('/apis/cert-manager.io/v1/clusterissuers', {
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: 'istio-ca' },
      spec: { ca: { secretName: 'istio-ca' } },
    });
    await c.client.create('/api/v1/namespaces/cert-manager/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'cert-manager-signer',
        namespace: 'cert-manager',
        labels: { app: 'cert-manager-signer' },
      },
      spec: {
        nodeName: 'node-0',
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'signer',
            image: 'ambient-mesh/cert-manager-signer:v1.21.2',
            args: ['--kubeconfig', c.kubeconfig, '--cluster-resource-namespace', 'cert-manager'],
          },
        ],
      },
    });
    await waitFor(
      'ClusterIssuer istio-ca Ready (cert-manager is running)',
      async () => {
        const ci = await c.client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
          '/apis/cert-manager.io/v1/clusterissuers/istio-ca',
        );
        return ci.status?.conditions?.some(x => x.type === 'Ready' && x.status === 'True') === true
          ? true
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );

    await installMeshReady(c, log);
    // istiod may create, approve (for this signer only) and delete CertificateSigningRequests.
    await c.client.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'istiod-k8s-csr' },
      rules: [
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests'],
          verbs: ['create', 'get', 'list', 'watch', 'delete'],
        },
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests/approval'],
          verbs: ['update'],
        },
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['signers'],
          resourceNames: [SIGNER],
          verbs: ['approve'],
        },
      ],
    });
    await c.client.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'istiod-k8s-csr' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'istiod-k8s-csr' },
      subjects: [{ kind: 'ServiceAccount', name: 'istiod', namespace: MESH_NAMESPACE }],
    });
    // The signer's root, where upstream's RA reads it: <ROOT_CA_DIR>/root-cert.pem.
    await c.client.create(`/api/v1/namespaces/${MESH_NAMESPACE}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'external-ca-root', namespace: MESH_NAMESPACE },
      data: { 'root-cert.pem': material.rootPem },
    });
    const istiodPath = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/deployments/istiod`;
    await c.client.strategicPatch(istiodPath, {
      spec: {
        template: {
          spec: {
            volumes: [{ name: 'external-ca-root', configMap: { name: 'external-ca-root' } }],
            containers: [
              {
                name: 'discovery',
                env: [
                  { name: 'EXTERNAL_CA', value: 'ISTIOD_RA_KUBERNETES_API' },
                  { name: 'K8S_SIGNER', value: SIGNER },
                  { name: 'ROOT_CA_DIR', value: '/etc/external-ca' },
                ],
                volumeMounts: [{ name: 'external-ca-root', mountPath: '/etc/external-ca', readOnly: true }],
              },
            ],
          },
        },
      },
    });
    await rollout(istiodPath, st => st.updatedReplicas === 1 && st.readyReplicas === 1 && st.replicas === 1);
    // istiod deletes each request once it has the certificate: watch them while they exist.
    csrWatch = c.client
      .watch<CsrSeen>(
        '/apis/certificates.k8s.io/v1/certificatesigningrequests',
        { signal: stopCsrWatch.signal, timeoutSeconds: 600 },
        event => {
          csrEvents.push(event.object);
        },
      )
      .catch(() => undefined);
    const { client, echo } = await clientAndEcho(c, NS, { timeoutMs: 120_000 });
    pods.set('echo', echo).set('client', client);
    scenario.logSetupTime();
  }, 900_000);

  afterAll(async () => {
    stopCsrWatch.abort();
    await csrWatch;
    await scenario.stop();
  }, 180_000);

  it('workload certificates are issued by cert-manager through CertificateSigningRequests, and L4 passes', async () => {
    const client = pods.get('client')!;
    const echo = pods.get('echo')!;
    const signerCa = new X509Certificate(material.intermediates[0]!.certPem);
    for (const { sa, leaf } of await leaves({ client, echo })) {
      expect(leaf.verify(signerCa.publicKey), `${sa} signed by the ClusterIssuer's CA`).toBe(true);
      expect(leaf.issuer).toBe(signerCa.subject);
      expect(leaf.subjectAltName).toBe(`URI:spiffe://cluster.local/ns/${NS}/sa/${sa}`);
    }
    // The CertificateSigningRequest objects: made by istiod, approved by istiod for the signer,
    // signed by cert-manager (the certificate is on the object), then deleted by istiod.
    const signed = csrEvents.filter(
      x => x.spec?.signerName === SIGNER && (x.status?.certificate ?? '') !== '',
    );
    const names = new Set(signed.map(x => x.metadata?.name));
    expect(names.size).toBeGreaterThanOrEqual(2);
    for (const x of signed) {
      expect(x.spec?.username).toBe(`system:serviceaccount:${MESH_NAMESPACE}:istiod`);
      expect(x.status?.conditions?.some(c => c.type === 'Approved' && c.reason === 'IstiodApproved')).toBe(
        true,
      );
      const issued = new X509Certificate(Buffer.from(x.status?.certificate ?? '', 'base64').toString('utf8'));
      expect(issued.verify(signerCa.publicKey)).toBe(true);
    }
    log(`${String(names.size)} CertificateSigningRequests signed by ${SIGNER}`);
    const csrs = await kube().client.get<{
      items: { metadata?: { name?: string }; spec?: { signerName?: string } }[];
    }>('/apis/certificates.k8s.io/v1/certificatesigningrequests');
    expect(csrs.items.filter(x => x.spec?.signerName === SIGNER)).toEqual([]);

    for (let i = 0; i < 3; i++) expect(await httpCode(client, `http://${echo.ip}:8080/`)).toBe(200);
    await waitFor(
      'the destination ztunnel to count the mTLS connections',
      async () => ((await mtlsToEcho()) >= 3 ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  }, 180_000);
});
