// The cluster DNS workload (image ambient-mesh/cluster-dns): answers <svc>.<ns>.svc.cluster.local
// from the Services API, watched with the pod's projected service-account token (in-cluster config).
import { errorMessage } from '@ambient-mesh/errors';
import type { V1Service } from '@kubernetes/client-node';
import { startDnsServer } from '../dns/dns-server.ts';
import { ClusterRecords } from '../dns/records.ts';
import { Informer, KubeClient, clientSource } from '@ambient-mesh/kube';

const domain = process.env.CLUSTER_DOMAIN ?? 'cluster.local';
const port = Number(process.env.DNS_PORT ?? '53');
const records = new ClusterRecords(domain);
const client = KubeClient.inCluster();

function toRecord(svc: V1Service): { name: string; namespace: string; addresses: string[] } | undefined {
  const name = svc.metadata?.name;
  const namespace = svc.metadata?.namespace;
  const ip = svc.spec?.clusterIP;
  if (name === undefined || namespace === undefined || ip === undefined || ip === 'None') return undefined;
  return { name, namespace, addresses: [ip] };
}

const services = new Informer<V1Service>({
  name: 'services',
  source: clientSource<V1Service>(client, '/api/v1/services'),
  onError(e) {
    console.error(`service watch: ${errorMessage(e)}`);
  },
});
const setRecord = (svc: V1Service): void => {
  const r = toRecord(svc);
  if (r) records.set(r);
};
services.on({
  add: setRecord,
  update: (_old, svc) => {
    setRecord(svc);
  },
  delete(svc) {
    records.remove(svc.metadata?.name ?? '', svc.metadata?.namespace ?? '');
  },
});
void services.synced.then(() => {
  console.log(`synced ${services.cache.size} services`);
});
void services.start();

const server = await startDnsServer(records, '0.0.0.0', port);
console.log(`cluster DNS for ${domain} on :${port}`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
