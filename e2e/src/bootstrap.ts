import type { KubeClient } from '@ambient-mesh/kube';
import type { ClusterLayout } from './layout.ts';

/**
 * Objects every local cluster starts with: the cluster DNS (ServiceAccount, read-only RBAC on
 * Services, a Deployment of our DNS workload and the `kube-dns` Service on the fixed DNS
 * ClusterIP the kubelets write into pods' resolv.conf).
 */
export async function bootstrapObjects(client: KubeClient, layout: ClusterLayout): Promise<void> {
  const ns = 'kube-system';
  const labels = { 'k8s-app': 'kube-dns' };
  await client.ensure(`/api/v1/namespaces/${ns}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'cluster-dns', namespace: ns },
  });
  await client.ensure('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'ambient-mesh:cluster-dns' },
    rules: [{ apiGroups: [''], resources: ['services', 'endpoints'], verbs: ['get', 'list', 'watch'] }],
  });
  await client.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'ambient-mesh:cluster-dns' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ambient-mesh:cluster-dns' },
    subjects: [{ kind: 'ServiceAccount', name: 'cluster-dns', namespace: ns }],
  });
  await client.ensure(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: ns, labels },
    spec: {
      clusterIP: layout.dnsServiceIp,
      selector: labels,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      ],
    },
  });
  await client.ensure(`/apis/apps/v1/namespaces/${ns}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'cluster-dns', namespace: ns, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'cluster-dns',
          dnsPolicy: 'Default',
          terminationGracePeriodSeconds: 2,
          // Nodes may register with the CNI not-ready taint (`nodeTaints`); cluster DNS must run
          // before the mesh that removes it is installed, as a cluster's system pods would.
          tolerations: [{ key: 'cni.istio.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }],
          containers: [
            {
              name: 'dns',
              image: 'ambient-mesh/cluster-dns:0.1.0',
              env: [{ name: 'CLUSTER_DOMAIN', value: layout.clusterDomain }],
              ports: [
                { name: 'dns', containerPort: 53, protocol: 'UDP' },
                { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
              ],
              readinessProbe: { tcpSocket: { port: 53 }, periodSeconds: 1, failureThreshold: 1 },
            },
          ],
        },
      },
    },
  });
}
