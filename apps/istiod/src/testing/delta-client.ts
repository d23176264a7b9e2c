/**
 * A minimal delta ADS client over grpc-js for tests and benchmarks: it collects responses in
 * order and lets a test await the next one with a bounded deadline (never a fixed sleep).
 */
import * as grpc from '@grpc/grpc-js';
import {
  AggregatedDiscoveryService,
  toStruct,
  type discovery,
  type JsonObject,
} from '@ambient-mesh/xds-types';

const method = AggregatedDiscoveryService.DeltaAggregatedResources;

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

/** A node as ztunnel sends it (wire reference §3.2). */
export function ztunnelNode(
  o: ZtunnelNodeOptions = {},
): NonNullable<discovery.DeltaDiscoveryRequestInit['node']> {
  const ip = o.ip ?? '10.0.0.2';
  const pod = o.podName ?? 'ztunnel-abcde';
  const ns = o.namespace ?? 'istio-system';
  return {
    id: `ztunnel~${ip}~${pod}.${ns}~${ns}.svc.cluster.local`,
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

export class DeltaTestClient {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<
    discovery.DeltaDiscoveryRequestInit,
    discovery.DeltaDiscoveryResponse
  >;
  readonly #queue: discovery.DeltaDiscoveryResponse[] = [];
  #waiter: (() => void) | undefined;
  #error: grpc.ServiceError | undefined;
  #ended = false;

  constructor(options: DeltaClientOptions) {
    const creds = grpc.credentials.createSsl(Buffer.from(options.rootCertPem));
    this.#client = new grpc.Client(options.address, creds, {
      'grpc.ssl_target_name_override': options.serverName ?? 'istiod.istio-system.svc',
      'grpc.default_authority': options.serverName ?? 'istiod.istio-system.svc',
      'grpc.max_receive_message_length': 200 * 1024 * 1024,
    });
    const md = new grpc.Metadata();
    if (options.token !== undefined) md.set('authorization', `Bearer ${options.token}`);
    this.#call = this.#client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      md,
    );
    this.#call.on('data', (resp: discovery.DeltaDiscoveryResponse) => {
      this.#queue.push(resp);
      this.#wake();
    });
    this.#call.on('error', (err: grpc.ServiceError) => {
      this.#error = err;
      this.#wake();
    });
    this.#call.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  send(req: discovery.DeltaDiscoveryRequestInit): void {
    this.#call.write(req);
  }

  ack(resp: discovery.DeltaDiscoveryResponse): void {
    this.send({ typeUrl: resp.typeUrl, responseNonce: resp.nonce });
  }

  nack(resp: discovery.DeltaDiscoveryResponse, message: string): void {
    this.send({ typeUrl: resp.typeUrl, responseNonce: resp.nonce, errorDetail: { code: 3, message } });
  }

  /** Responses received but not yet taken. */
  get buffered(): number {
    return this.#queue.length;
  }

  /** The next response, or a rejection after `timeoutMs` or when the stream fails. */
  async next(timeoutMs = 5000): Promise<discovery.DeltaDiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 10_000; i++) {
      const r = this.#queue.shift();
      if (r !== undefined) return r;
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) throw new Error('stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    throw new Error('unreachable: wait loop bound');
  }

  /** Resolves with the stream's error status (for rejected streams). */
  async failure(timeoutMs = 5000): Promise<grpc.ServiceError> {
    try {
      for (let i = 0; i < 100; i++) await this.next(timeoutMs);
    } catch (err) {
      return err as grpc.ServiceError;
    }
    throw new Error('the stream did not fail');
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}
