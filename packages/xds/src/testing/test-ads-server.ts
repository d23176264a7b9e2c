/**
 * A scripted ADS server for client tests (grpc-js, loopback, insecure or TLS): it records every
 * request and the call metadata, and lets the test write responses on the current stream or
 * drop it. Delta and SotW alike. It decides nothing: `AdsServer` is the server.
 */
import * as grpc from '@grpc/grpc-js';
import { AggregatedDiscoveryService, type discovery } from '@ambient-mesh/xds-types';

type DeltaCall = grpc.ServerDuplexStream<
  discovery.DeltaDiscoveryRequest,
  discovery.DeltaDiscoveryResponseInit
>;
type SotwCall = grpc.ServerDuplexStream<discovery.DiscoveryRequest, discovery.DiscoveryResponseInit>;

export interface TestAdsServerOptions {
  /** Server credentials; default insecure. */
  readonly credentials?: grpc.ServerCredentials;
  /** Called for each delta request without a response nonce (an initial subscription). */
  readonly onInitial?: (call: DeltaCall, request: discovery.DeltaDiscoveryRequest) => void;
}

export class TestAdsServer {
  /** Delta requests, in arrival order, across streams. */
  readonly requests: discovery.DeltaDiscoveryRequest[] = [];
  /** SotW requests, in arrival order, across streams. */
  readonly sotwRequests: discovery.DiscoveryRequest[] = [];
  readonly metadata: grpc.Metadata[] = [];
  /** Every delta call accepted so far. */
  readonly calls: DeltaCall[] = [];
  streams = 0;
  onInitial: ((call: DeltaCall, request: discovery.DeltaDiscoveryRequest) => void) | undefined;
  readonly #server = new grpc.Server();
  readonly #credentials: grpc.ServerCredentials;
  #call: DeltaCall | undefined;
  #sotwCall: SotwCall | undefined;
  #nonce = 0;

  constructor(options: TestAdsServerOptions = {}) {
    this.#credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
    this.onInitial = options.onInitial;
  }

  /** Binds 127.0.0.1 on an ephemeral port; returns `host:port`. */
  async start(): Promise<string> {
    this.#server.addService(AggregatedDiscoveryService, {
      DeltaAggregatedResources: (call: DeltaCall) => {
        this.streams += 1;
        this.#call = call;
        this.calls.push(call);
        this.metadata.push(call.metadata);
        call.on('data', (request: discovery.DeltaDiscoveryRequest) => {
          this.requests.push(request);
          if (request.responseNonce === '') this.onInitial?.(call, request);
        });
        call.on('error', () => undefined);
        call.on('end', () => call.end());
      },
      StreamAggregatedResources: (call: SotwCall) => {
        this.streams += 1;
        this.#sotwCall = call;
        this.metadata.push(call.metadata);
        call.on('data', (request: discovery.DiscoveryRequest) => this.sotwRequests.push(request));
        call.on('error', () => undefined);
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync('127.0.0.1:0', this.#credentials, (err, bound) => {
        if (err) reject(err);
        else resolve(bound);
      });
    });
    return `127.0.0.1:${port}`;
  }

  /** Writes a delta response on the current stream; returns its nonce (`n<k>` unless given). */
  push(response: Omit<discovery.DeltaDiscoveryResponseInit, 'nonce'> & { nonce?: string }): string {
    if (this.#call === undefined) throw new Error('no delta stream open');
    this.#nonce += 1;
    const nonce = response.nonce ?? `n${this.#nonce}`;
    this.#call.write({ ...response, nonce });
    return nonce;
  }

  /** Writes a SotW response on the current SotW stream; returns its nonce. */
  pushSotw(response: Omit<discovery.DiscoveryResponseInit, 'nonce'>): string {
    if (this.#sotwCall === undefined) throw new Error('no SotW stream open');
    this.#nonce += 1;
    const nonce = `n${this.#nonce}`;
    this.#sotwCall.write({ ...response, nonce });
    return nonce;
  }

  /** Ends the current streams with UNAVAILABLE, as a restarting control plane would. */
  dropStream(): void {
    for (const call of [this.#call, this.#sotwCall]) {
      call?.emit('error', { code: grpc.status.UNAVAILABLE, details: 'test drop' });
      call?.destroy(new Error('test drop'));
    }
    this.#call = undefined;
    this.#sotwCall = undefined;
  }

  requestsFor(typeUrl: string): discovery.DeltaDiscoveryRequest[] {
    return this.requests.filter(r => r.typeUrl === typeUrl);
  }

  sotwRequestsFor(typeUrl: string): discovery.DiscoveryRequest[] {
    return this.sotwRequests.filter(r => r.typeUrl === typeUrl);
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
