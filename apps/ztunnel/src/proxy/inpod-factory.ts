/**
 * The `WorkloadProxyFactory` of in-pod mode: for each ZDS Add it starts an `InPodProxy` with
 * sockets made in the pod's network namespace, straight from the ZDS information (uid, name,
 * namespace, service account, netns). It does not wait for istiod: the listeners are bound at
 * once, so the Add is ACKed and the pod's traffic is never refused, and each connection waits
 * (bounded, `lookupTimeoutMs`) for the pod's WDS workload and certificate.
 */
import type { NetnsHandle, RunningProxy, WorkloadInfo, WorkloadProxyFactory } from '../zds/state-manager.ts';
import { InPodProxy } from './inpod-proxy.ts';
import { LocalWorkload } from './local-workload.ts';
import type { PodSockets } from './pod-sockets.ts';
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
        drainTimeoutMs: inputs.config.connectionTerminationDeadlineMs,
        timers: inputs.timers,
      });
      return { drain: () => proxy.drain(), connections: () => proxy.connections() };
    },
  });
}
