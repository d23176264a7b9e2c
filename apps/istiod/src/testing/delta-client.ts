/**
 * A hand-driven delta ADS call to istiod for tests and benchmarks: `@ambient-mesh/xds`'s
 * `RawDeltaStream` over TLS with istiod's root, a bearer token, and istiod's serving name. The
 * test writes every request (subscriptions, ACKs, NACKs) itself.
 */
import * as grpc from '@grpc/grpc-js';
import { ProxyType, nodeId } from '@ambient-mesh/mesh-api';
import { RawDeltaStream } from '@ambient-mesh/xds/testing';
import { toStruct, type core, type JsonObject } from '@ambient-mesh/xds-types';

export interface DeltaClientOptions {
  readonly address: string;
  readonly rootCertPem: string;
  readonly serverName?: string;
  readonly token?: string;
}

export interface ZtunnelNodeOptions {
  readonly ip?: string;
  readonly podName?: string;
  readonly namespace?: string;
  readonly nodeName?: string;
  readonly extra?: JsonObject;
}

/** A node as ztunnel sends it (docs/protocols.md#wds-discovery-messages). */
export function ztunnelNode(o: ZtunnelNodeOptions = {}): core.NodeInit {
  const ip = o.ip ?? '10.0.0.2';
  const pod = o.podName ?? 'ztunnel-abcde';
  const ns = o.namespace ?? 'istio-system';
  return {
    id: nodeId({ type: ProxyType.ztunnel, ip, podName: pod, namespace: ns }),
    metadata: toStruct({
      NAME: pod,
      NAMESPACE: ns,
      INSTANCE_IPS: ip,
      NODE_NAME: o.nodeName ?? 'node-a',
      CLUSTER_ID: 'Kubernetes',
      ...(o.extra ?? {}),
    }),
  };
}

/** A raw delta stream to istiod's TLS port: `send`, `next`, `ack`, `nack`, `failure`, `close`. */
export class DeltaTestClient extends RawDeltaStream {
  constructor(options: DeltaClientOptions) {
    const serverName = options.serverName ?? 'istiod.istio-system.svc';
    const metadata = new grpc.Metadata();
    if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
    super({
      address: options.address,
      credentials: grpc.credentials.createSsl(Buffer.from(options.rootCertPem)),
      channelOptions: {
        'grpc.ssl_target_name_override': serverName,
        'grpc.default_authority': serverName,
      },
      metadata,
    });
  }
}
