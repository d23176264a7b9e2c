/**
 * Request mirroring (`route.request_mirror_policies`), as Envoy's shadowing: each policy drawn
 * against its `runtime_fraction` sends a copy of the request (same method, path, headers and
 * buffered body) to its cluster with the Host/authority suffixed `-shadow`
 * (`reviews:9080` → `reviews-shadow:9080`). The copy is fire-and-forget: its response is read and
 * dropped, its failures only logged, and it never delays or changes the main response.
 * Streamed (gRPC) request bodies are not mirrored (the main request consumes them).
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import type { ClusterConfig, MirrorPolicy, WaypointConfig } from '../config/types.ts';
import type { ClusterBalancer } from './balancer.ts';
import { endpointKey } from './balancer.ts';
import { clusterEndpoints } from './cluster-endpoints.ts';
import type { DnsClusters } from './dns-clusters.ts';
import { fromUndici } from './upstream.ts';
import type { UpstreamPools, UpstreamResponse } from './upstream.ts';

/** Envoy's shadow host: `-shadow` appended to the host, before the port if there is one. */
export function shadowHost(host: string): string {
  const colon = host.lastIndexOf(':');
  const hasPort =
    colon > 0 && (host.startsWith('[') ? host[colon - 1] === ']' : !host.slice(0, colon).includes(':'));
  return hasPort ? `${host.slice(0, colon)}-shadow${host.slice(colon)}` : `${host}-shadow`;
}

/** The policies this request is mirrored to; `random` gives [0, 1). */
export function drawMirrors(
  mirrors: readonly MirrorPolicy[] | undefined,
  random: () => number,
): MirrorPolicy[] {
  return (mirrors ?? []).filter(
    m => m.perMillion >= 1_000_000 || (m.perMillion > 0 && random() * 1_000_000 < m.perMillion),
  );
}

export interface MirrorDeps {
  readonly upstream: UpstreamPools;
  readonly dns: DnsClusters | undefined;
  readonly balancer: (cluster: string) => ClusterBalancer;
  readonly random: () => number;
  readonly log: Logger;
}

export interface MirrorRequest {
  readonly method: string;
  readonly path: string;
  /** The upstream request's headers (after header mods); `host` is replaced by the shadow host. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
  /** The route timeout (0: none); the copy is abandoned past it (at most a minute). */
  readonly timeoutMs: number;
  readonly destination: { readonly ip: string; readonly port: number };
}

const MAX_MIRROR_MS = 60_000;

/** Sends one copy; resolves when it is done (or failed). Never rejects. */
export async function sendMirror(
  deps: MirrorDeps,
  config: WaypointConfig,
  policy: MirrorPolicy,
  req: MirrorRequest,
): Promise<void> {
  const cluster: ClusterConfig | undefined = config.clusters.get(policy.cluster);
  if (cluster === undefined) {
    deps.log.debug({ cluster: policy.cluster }, 'mirror cluster not found');
    return;
  }
  const host = shadowHost(String(req.headers.host ?? `${req.destination.ip}:${req.destination.port}`));
  const headers: Record<string, string | string[]> = { ...req.headers, host };
  const signal = AbortSignal.timeout(
    req.timeoutMs > 0 ? Math.min(req.timeoutMs, MAX_MIRROR_MS) : MAX_MIRROR_MS,
  );
  let endpointName = '';
  try {
    const endpoints = await clusterEndpoints(cluster, config, deps.dns, req.destination);
    const balancer = deps.balancer(cluster.name);
    const endpoint = balancer.pick(cluster, endpoints, {
      hash: undefined,
      exclude: new Set(),
      random: deps.random,
    });
    if (endpoint === undefined) {
      deps.log.debug({ cluster: cluster.name }, 'mirror: no healthy upstream');
      return;
    }
    endpointName = endpointKey(endpoint);
    const body = req.body.length > 0 || !['GET', 'HEAD'].includes(req.method) ? req.body : null;
    let response: UpstreamResponse;
    if (cluster.upstreamProtocol === 'http2') {
      const h2: OutgoingHttpHeaders = {
        ':method': req.method,
        ':path': req.path,
        ':scheme': 'http',
        ':authority': host,
      };
      for (const [name, value] of Object.entries(headers)) if (name !== 'host') h2[name] = value;
      response = await deps.upstream.h2Request(endpoint, h2, body, signal);
    } else {
      const pool = deps.upstream.pool(endpoint, cluster.circuitBreakers.maxConnections);
      response = fromUndici(
        await pool.request({
          path: req.path,
          method: req.method,
          headers,
          body,
          signal,
          headersTimeout: 0,
          bodyTimeout: 0,
        }),
      );
    }
    await response.discard();
  } catch (err) {
    deps.log.debug(
      { err: errorMessage(err), cluster: cluster.name, endpoint: endpointName },
      'mirrored request failed',
    );
  }
}
