/**
 * A small delta ADS server for tests (grpc-js, loopback). It records every request and lets the
 * test push responses on the current stream or end it.
 */
import * as grpc from '@grpc/grpc-js';
import { AggregatedDiscoveryService } from '@ambient-mesh/xds-types';
import type { discovery } from '@ambient-mesh/xds-types';

type Call = grpc.ServerDuplexStream<discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponseInit>;

export class TestDeltaXdsServer {
  readonly requests: discovery.DeltaDiscoveryRequest[] = [];
  readonly metadata: grpc.Metadata[] = [];
  streams = 0;
  #server = new grpc.Server();
  #call: Call | undefined;
  #nonce = 0;

  async start(): Promise<string> {
    this.#server.addService(AggregatedDiscoveryService, {
      DeltaAggregatedResources: (call: Call) => {
        this.streams += 1;
        this.#call = call;
        this.metadata.push(call.metadata);
        call.on('data', (request: discovery.DeltaDiscoveryRequest) => this.requests.push(request));
        call.on('error', () => undefined);
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) reject(err);
        else resolve(bound);
      });
    });
    return `http://127.0.0.1:${port}`;
  }

  /** Sends a response on the current stream; returns its nonce. */
  push(response: Omit<discovery.DeltaDiscoveryResponseInit, 'nonce'>): string {
    if (this.#call === undefined) throw new Error('no stream open');
    this.#nonce += 1;
    const nonce = `n${this.#nonce}`;
    this.#call.write({ ...response, nonce });
    return nonce;
  }

  /** Ends the current stream with UNAVAILABLE, as a restarting istiod would. */
  dropStream(): void {
    this.#call?.emit('error', { code: grpc.status.UNAVAILABLE, details: 'test drop' });
    this.#call?.destroy(new Error('test drop'));
    this.#call = undefined;
  }

  requestsFor(typeUrl: string): discovery.DeltaDiscoveryRequest[] {
    return this.requests.filter(r => r.typeUrl === typeUrl);
  }

  stop(): Promise<void> {
    return new Promise(resolve => {
      this.#server.tryShutdown(() => {
        resolve();
      });
      this.#server.forceShutdown();
    });
  }
}
