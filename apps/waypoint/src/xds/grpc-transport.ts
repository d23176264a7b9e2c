/**
 * The gRPC channel to istiod and the per-call metadata (bearer token re-read per call,
 * `clusterid`, `XDS_HEADER_*` extras). The same glue lives in ztunnel; it belongs in
 * `@ambient-mesh/xds` once a third app needs it.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { deltaStreamFactory as adsDeltaStreamFactory } from '@ambient-mesh/xds';
import type { DeltaStreamFactory } from '@ambient-mesh/xds';
import { TokenUnreadableError } from '../errors.ts';

export function createGrpcClient(
  address: string,
  rootCaPem: Buffer | undefined,
  altHostname: string | undefined,
): grpc.Client {
  const url = new URL(address);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 200 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  };
  if (url.protocol === 'https:') {
    if (altHostname !== undefined) options['grpc.ssl_target_name_override'] = altHostname;
    return new grpc.Client(`${url.hostname}:${port}`, grpc.credentials.createSsl(rootCaPem ?? null), options);
  }
  return new grpc.Client(`${url.hostname}:${port}`, grpc.credentials.createInsecure(), options);
}

export interface CallIdentity {
  readonly tokenPath: string | undefined;
  readonly clusterId: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** The metadata of one call to istiod (xDS or CA): the bearer token re-read, `clusterid`, extras. */
export function callMetadata(identity: CallIdentity): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (identity.tokenPath !== undefined) {
    let token: string;
    try {
      token = readFileSync(identity.tokenPath, 'utf8').trim();
    } catch (err) {
      throw new TokenUnreadableError(identity.tokenPath, { cause: err });
    }
    metadata.set('authorization', `Bearer ${token}`);
  }
  metadata.set('clusterid', identity.clusterId);
  for (const [name, value] of Object.entries(identity.headers)) metadata.set(name, value);
  return metadata;
}

export function deltaStreams(client: grpc.Client, identity: CallIdentity): DeltaStreamFactory {
  return adsDeltaStreamFactory(client, () => callMetadata(identity));
}
