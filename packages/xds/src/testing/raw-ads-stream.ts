/**
 * A plain grpc-js ADS call for tests and benchmarks that drive the protocol by hand: the test
 * writes each request itself (nothing is ACKed for it), responses queue in order, and `next()`
 * awaits the next one with a bounded deadline (never a fixed sleep). Not a client: it keeps no
 * state and never reconnects; `XdsClient` is the client.
 */
import * as grpc from '@grpc/grpc-js';
import { AggregatedDiscoveryService, type discovery } from '@ambient-mesh/xds-types';
import { NACK_CODE } from '../nack.ts';

export interface RawAdsStreamOptions {
  /** `host:port`. */
  readonly address: string;
  /** Channel credentials; default insecure. */
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  readonly metadata?: grpc.Metadata;
}

interface Protocol<Req, Res> {
  readonly method: {
    readonly path: string;
    readonly requestSerialize: (value: Req) => Buffer;
    readonly responseDeserialize: (bytes: Buffer) => Res;
  };
}

const DELTA: Protocol<discovery.DeltaDiscoveryRequestInit, discovery.DeltaDiscoveryResponse> = {
  method: AggregatedDiscoveryService.DeltaAggregatedResources,
};
const SOTW: Protocol<discovery.DiscoveryRequestInit, discovery.DiscoveryResponse> = {
  method: AggregatedDiscoveryService.StreamAggregatedResources,
};

export class RawAdsStream<Req, Res extends { typeUrl: string; nonce: string }> {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<Req, Res>;
  readonly #queue: Res[] = [];
  #waiter: (() => void) | undefined;
  #error: grpc.ServiceError | undefined;
  #ended = false;

  constructor(protocol: Protocol<Req, Res>, options: RawAdsStreamOptions & { readonly paused?: boolean }) {
    this.#client = new grpc.Client(
      options.address,
      options.credentials ?? grpc.credentials.createInsecure(),
      { 'grpc.max_receive_message_length': 200 * 1024 * 1024, ...options.channelOptions },
    );
    const m = protocol.method;
    this.#call = this.#client.makeBidiStreamRequest(
      m.path,
      m.requestSerialize,
      m.responseDeserialize,
      options.metadata ?? new grpc.Metadata(),
    );
    this.#call.on('error', (err: grpc.ServiceError) => {
      this.#error = err;
      this.#wake();
    });
    this.#call.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    // A paused stream never takes a message: its buffer fills to the high-water mark, then the
    // call stops reading the HTTP/2 stream and flow control pushes back on the server.
    if (options.paused === true) {
      this.#call.on('readable', this.#idle);
    } else {
      this.startReading();
    }
  }

  readonly #idle = (): void => undefined;

  /** Takes messages from now on (a paused stream catches up with what the server held back). */
  startReading(): void {
    this.#call.off('readable', this.#idle);
    this.#call.on('data', (resp: Res) => {
      this.#queue.push(resp);
      this.#wake();
    });
    this.#call.resume();
  }

  send(req: Req): void {
    this.#call.write(req);
  }

  /** Responses received but not yet taken. */
  get buffered(): number {
    return this.#queue.length;
  }

  /** The next response, or a rejection after `timeoutMs` or when the stream fails. */
  async next(timeoutMs = 5000): Promise<Res> {
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

/** A raw delta stream with `ack`/`nack` helpers. */
export class RawDeltaStream extends RawAdsStream<
  discovery.DeltaDiscoveryRequestInit,
  discovery.DeltaDiscoveryResponse
> {
  constructor(options: RawAdsStreamOptions & { readonly paused?: boolean }) {
    super(DELTA, options);
  }

  ack(resp: discovery.DeltaDiscoveryResponse): void {
    this.send({ typeUrl: resp.typeUrl, responseNonce: resp.nonce });
  }

  nack(resp: discovery.DeltaDiscoveryResponse, message: string): void {
    this.send({
      typeUrl: resp.typeUrl,
      responseNonce: resp.nonce,
      errorDetail: { code: NACK_CODE, message },
    });
  }
}

/** A raw SotW stream with `ack`/`nack` helpers (`resourceNames` as last requested). */
export class RawSotwStream extends RawAdsStream<discovery.DiscoveryRequestInit, discovery.DiscoveryResponse> {
  constructor(options: RawAdsStreamOptions & { readonly paused?: boolean }) {
    super(SOTW, options);
  }

  ack(resp: discovery.DiscoveryResponse, resourceNames: readonly string[] = []): void {
    this.send({
      typeUrl: resp.typeUrl,
      responseNonce: resp.nonce,
      versionInfo: resp.versionInfo,
      resourceNames,
    });
  }

  nack(
    resp: discovery.DiscoveryResponse,
    message: string,
    acceptedVersion = '',
    resourceNames: readonly string[] = [],
  ): void {
    this.send({
      typeUrl: resp.typeUrl,
      responseNonce: resp.nonce,
      versionInfo: acceptedVersion,
      resourceNames,
      errorDetail: { code: NACK_CODE, message },
    });
  }
}
