/**
 * The `WorkloadProxyFactory` of in-pod mode: for each ZDS Add it starts an `InPodProxy` with
 * sockets made in the pod's network namespace, straight from the ZDS information (uid, name,
 * namespace, service account, netns). It does not wait for istiod: the listeners are bound at
 * once, so the Add is ACKed and the pod's traffic is never refused, and each connection waits
 * (bounded, `lookupTimeoutMs`) for the pod's WDS workload and certificate. With `dns` set, the
 * pod's DNS proxy (15053, UDP and TCP) is started beside the listeners and drained with them.
 */
import { DnsForwarder } from '../dns/forwarder.ts';
import type { DnsSockets } from '../dns/forwarder.ts';
import { DnsProxy } from '../dns/dns-proxy.ts';
import type { UpstreamResolvers } from '../dns/resolv-conf.ts';
import type { NetnsHandle, RunningProxy, WorkloadInfo, WorkloadProxyFactory } from '../zds/state-manager.ts';
import { InPodProxy } from './inpod-proxy.ts';
import { LocalWorkload } from './local-workload.ts';
import type { PodSockets } from './pod-sockets.ts';
import { proxyLimits } from './proxy-inputs.ts';
import type { ProxyInputs } from './proxy-inputs.ts';

/** Makes the socket capability of one pod from what ZDS said about it. */
export type PodSocketsFactory = (pod: {
  readonly uid: string;
  readonly netns: NetnsHandle;
  readonly info: WorkloadInfo;
}) => PodSockets;

export interface InPodFactoryOptions {
  readonly sockets: PodSocketsFactory;
  /**
   * How long a connection waits for the pod's WDS workload and certificate before it is closed;
   * default 5 s (upstream's wait).
   */
  readonly lookupTimeoutMs?: number;
  /** The DNS proxy: its sockets in the pod and the upstream resolvers; omitted = no DNS proxy. */
  readonly dns?: {
    readonly sockets: (pod: { readonly uid: string; readonly netns: NetnsHandle }) => DnsSockets;
    readonly upstream: UpstreamResolvers;
  };
}

export function inPodProxyFactory(
  options: InPodFactoryOptions,
): (inputs: ProxyInputs) => WorkloadProxyFactory {
  return inputs => ({
    async start(uid: string, info: WorkloadInfo, netns: NetnsHandle): Promise<RunningProxy> {
      const local = new LocalWorkload({
        info,
        nodeName: inputs.config.nodeName,
        state: inputs.state,
        certificates: inputs.certificates,
        timeoutMs: options.lookupTimeoutMs ?? 5_000,
        timers: inputs.timers,
      });
      const proxy = await InPodProxy.start({
        local,
        state: inputs.state,
        sockets: options.sockets({ uid, netns, info }),
        certificates: inputs.certificates,
        metrics: inputs.metrics,
        accessLog: inputs.accessLog,
        logger: inputs.logger,
        spoofSource: inputs.config.origSrc !== 'off',
        limits: proxyLimits(inputs.config),
        drainTimeoutMs: inputs.config.connectionTerminationDeadlineMs,
        timers: inputs.timers,
      });
      let dns: DnsProxy | undefined;
      if (options.dns !== undefined) {
        const sockets = options.dns.sockets({ uid, netns });
        try {
          dns = await DnsProxy.start({
            sockets,
            forwarder: new DnsForwarder(options.dns.upstream, sockets),
            state: inputs.state,
            client: async () => local.current() ?? (await local.workload().catch(() => undefined)),
            clusterDomain: inputs.config.clusterDomain,
            metrics: inputs.metrics.dns,
            logger: inputs.logger.child({ component: 'dns', wl: `${info.namespace}/${info.name}` }),
          });
        } catch (err) {
          await proxy.drain();
          throw err;
        }
      }
      return {
        drain: () => {
          dns?.close();
          return proxy.drain();
        },
        connections: () => proxy.connections(),
      };
    },
  });
}
