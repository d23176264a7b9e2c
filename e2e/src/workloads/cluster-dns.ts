// The cluster DNS workload (image ambient-mesh/cluster-dns): answers <svc>.<ns>.svc.cluster.local
// from the Services API, watched with the pod's projected service-account token (in-cluster config).
import { errorMessage } from '@ambient-mesh/errors';
import type { V1Service } from '@kubernetes/client-node';
import { startDnsServer } from '../dns/dns-server.ts';
import { ClusterRecords } from '../dns/records.ts';
import { KubeClient } from '../kube-client.ts';

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

let synced = false;
client.reflect<V1Service>(
  '/api/v1/services',
  {},
  {
    onSync(items) {
      records.clear();
      for (const s of items) {
        const r = toRecord(s);
        if (r) records.set(r);
      }
      if (!synced) console.log(`synced ${items.length} services`);
      synced = true;
    },
    onEvent(type, svc) {
      if (type === 'DELETED') records.remove(svc.metadata?.name ?? '', svc.metadata?.namespace ?? '');
      else {
        const r = toRecord(svc);
        if (r) records.set(r);
      }
    },
    onError(e) {
      console.error(`service watch: ${errorMessage(e)}`);
    },
  },
);

const server = await startDnsServer(records, '0.0.0.0', port);
console.log(`cluster DNS for ${domain} on :${port}`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
