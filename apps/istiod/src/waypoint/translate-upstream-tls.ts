/**
 * A DestinationRule's `tls` (`ClientTLSSettings`) for a ServiceEntry host to the waypoint cluster's
 * `transport_socket` (pure): `envoy.transport_sockets.tls` with an `UpstreamTlsContext`, as
 * upstream's `cluster_tls.go` builds it for `SIMPLE` and `MUTUAL` (TLS origination):
 *
 * - `sni`: `tls.sni`, else the ServiceEntry host (upstream leaves it empty and sets `auto_sni`
 *   from the request's Host; for a request to the entry's host that is the same name);
 * - `common_tls_context.validation_context`: the CA of `credentialName` inline
 *   (`trusted_ca.inline_bytes`; upstream serves the same bytes over SDS, a waypoint of ours takes
 *   them inline), else the system bundle (`trusted_ca.filename`, upstream's
 *   `VERIFY_CERTIFICATE_AT_CLIENT` default); `subjectAltNames` → `match_typed_subject_alt_names`
 *   (URI for names with a scheme, IP_ADDRESS for IPs, else DNS); `insecureSkipVerify` → no
 *   validation context at all;
 * - `MUTUAL`: the client certificate and key of `credentialName` inline in `tls_certificates`;
 * - ALPN `h2` on HTTP/2 clusters only (upstream's `ALPNH2Only`), none otherwise.
 *
 * `DISABLE` is plaintext (no socket). `ISTIO_MUTUAL` is upstream's SDS shape (the waypoint's own
 * workload certificate and the mesh roots, see `istioMutual`). File paths (`caCertificates`,
 * `clientCertificate`, `privateKey` without `credentialName`: files on the proxy, which a waypoint
 * does not have) are problems: the caller leaves the cluster out rather
 * than program it with TLS it cannot honour, and never falls back to plaintext.
 */
import { isIP } from 'node:net';
import { EnvoyType, typedConfig } from './envoy-protos.ts';
import type { ClientTls } from './types.ts';

/** The system trust bundle of the proxy image (upstream's default when no CA is given). */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** What a `credentialName` Secret holds, PEM bytes. */
export interface TlsCredential {
  readonly caCertificate?: Uint8Array;
  readonly certificateChain?: Uint8Array;
  readonly privateKey?: Uint8Array;
}

export type CredentialResult =
  { readonly ok: true; readonly value: TlsCredential } | { readonly ok: false; readonly message: string };

export interface UpstreamTlsInput {
  readonly tls: ClientTls;
  /** The ServiceEntry host (the default SNI). */
  readonly host: string;
  /** The ServiceEntry port (in the `ISTIO_MUTUAL` default SNI). */
  readonly port: number;
  /** The ServiceEntry's `subjectAltNames`: `ISTIO_MUTUAL`'s SANs when the rule names none (upstream). */
  readonly entrySubjectAltNames?: readonly string[];
  /** The cluster speaks HTTP/2 upstream (ALPN `h2`). */
  readonly http2: boolean;
  /** Reads a `credentialName` Secret (from the waypoint's namespace). */
  readonly credential: (name: string) => CredentialResult;
}

export type UpstreamTlsResult =
  | { readonly kind: 'plaintext' }
  | { readonly kind: 'tls'; readonly transportSocket: object }
  | { readonly kind: 'problem'; readonly message: string };

const TLS_SOCKET = 'envoy.transport_sockets.tls';

/** The `match_typed_subject_alt_names` entry of one `subjectAltNames` name. */
export function sanMatcher(name: string): object {
  const sanType = name.includes('://') ? 'URI' : isIP(name) !== 0 ? 'IP_ADDRESS' : 'DNS';
  return { sanType, matcher: { exact: name } };
}

/** Upstream's SDS config source: the proxy's own SDS server (`sds-grpc`), no initial fetch timeout. */
const SDS_CONFIG = Object.freeze({
  apiConfigSource: {
    apiType: 'GRPC',
    setNodeOnFirstMessageOnly: true,
    transportApiVersion: 'V3',
    grpcServices: [{ envoyGrpc: { clusterName: 'sds-grpc' } }],
  },
  initialFetchTimeout: { seconds: 0, nanos: 0 },
  resourceApiVersion: 'V3',
});

/**
 * `ISTIO_MUTUAL`, upstream's shape: the proxy's workload certificate (SDS `default`) and the mesh
 * roots (SDS `ROOTCA`), the SANs (the rule's, else the entry's) as a default validation context, SNI
 * `outbound_.<port>_._.<host>` unless set, ALPN `istio-peer-exchange, istio` (`h2` added on
 * HTTP/2 clusters).
 */
function istioMutual(input: UpstreamTlsInput): object {
  const { tls } = input;
  const sans = tls.subjectAltNames.length > 0 ? tls.subjectAltNames : (input.entrySubjectAltNames ?? []);
  return {
    name: TLS_SOCKET,
    typedConfig: typedConfig(EnvoyType.upstreamTlsContext, {
      sni: tls.sni ?? `outbound_.${input.port}_._.${input.host}`,
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: SDS_CONFIG }],
        combinedValidationContext: {
          defaultValidationContext:
            sans.length > 0 ? { matchTypedSubjectAltNames: sans.map(sanMatcher) } : {},
          validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS_CONFIG },
        },
        alpnProtocols: input.http2
          ? ['istio-peer-exchange', 'istio', 'h2']
          : ['istio-peer-exchange', 'istio'],
      },
    }),
  };
}

export function buildUpstreamTls(input: UpstreamTlsInput): UpstreamTlsResult {
  const { tls } = input;
  if (tls.mode === 'DISABLE') return { kind: 'plaintext' };
  if (tls.mode === 'ISTIO_MUTUAL') return { kind: 'tls', transportSocket: istioMutual(input) };
  let credential: TlsCredential = {};
  if (tls.credentialName !== undefined) {
    const found = input.credential(tls.credentialName);
    if (!found.ok)
      return { kind: 'problem', message: `credentialName ${tls.credentialName}: ${found.message}` };
    credential = found.value;
  } else {
    const files = (['caCertificates', 'clientCertificate', 'privateKey'] as const).filter(
      k => tls[k] !== undefined && !(k === 'caCertificates' && tls[k] === SYSTEM_CA_BUNDLE),
    );
    if (files.length > 0)
      return {
        kind: 'problem',
        message: `tls.${files.join(', tls.')}: file paths are not supported by the waypoint (use credentialName)`,
      };
  }
  const common: Record<string, unknown> = {};
  if (tls.mode === 'MUTUAL') {
    if (credential.certificateChain === undefined || credential.privateKey === undefined)
      return {
        kind: 'problem',
        message: `tls.mode MUTUAL needs a client certificate: credentialName${tls.credentialName === undefined ? ' is not set' : ` ${tls.credentialName} has no tls.crt/tls.key`}`,
      };
    common.tlsCertificates = [
      {
        certificateChain: { inlineBytes: credential.certificateChain },
        privateKey: { inlineBytes: credential.privateKey },
      },
    ];
  }
  if (tls.insecureSkipVerify !== true) {
    common.validationContext = {
      trustedCa:
        credential.caCertificate !== undefined
          ? { inlineBytes: credential.caCertificate }
          : { filename: SYSTEM_CA_BUNDLE },
      ...(tls.subjectAltNames.length > 0
        ? { matchTypedSubjectAltNames: tls.subjectAltNames.map(sanMatcher) }
        : {}),
    };
  }
  if (input.http2) common.alpnProtocols = ['h2'];
  return {
    kind: 'tls',
    transportSocket: {
      name: TLS_SOCKET,
      typedConfig: typedConfig(EnvoyType.upstreamTlsContext, {
        sni: tls.sni ?? input.host,
        commonTlsContext: common,
      }),
    },
  };
}

/**
 * The PEM parts of a `credentialName` Secret, upstream's two layouts: `ca.crt`, `tls.crt`,
 * `tls.key` (a TLS Secret) or `cacert`, `cert`, `key` (a generic one); the CA may also sit in a
 * separate `<name>-cacert` Secret. `base64` values as the API serves `data`.
 */
export function credentialFromSecretData(
  data: Readonly<Record<string, unknown>>,
  cacertData: Readonly<Record<string, unknown>> | undefined,
  verify: {
    readonly certificate: (pem: Buffer) => string | undefined;
    readonly keyPair: (cert: Buffer, key: Buffer) => string | undefined;
  },
): CredentialResult {
  const bytes = (d: Readonly<Record<string, unknown>> | undefined, ...keys: string[]): Buffer | undefined => {
    for (const k of keys) {
      const v = d?.[k];
      if (typeof v === 'string' && v !== '') return Buffer.from(v, 'base64');
    }
    return undefined;
  };
  const ca = bytes(data, 'ca.crt', 'cacert') ?? bytes(cacertData, 'ca.crt', 'cacert');
  const cert = bytes(data, 'tls.crt', 'cert');
  const key = bytes(data, 'tls.key', 'key');
  if (ca === undefined && cert === undefined)
    return { ok: false, message: 'the Secret has neither ca.crt (cacert) nor tls.crt (cert)' };
  if (ca !== undefined) {
    const bad = verify.certificate(ca);
    if (bad !== undefined) return { ok: false, message: `ca.crt is not a PEM certificate: ${bad}` };
  }
  if (cert !== undefined || key !== undefined) {
    if (cert === undefined || key === undefined)
      return { ok: false, message: 'the Secret has only one of tls.crt and tls.key' };
    const bad = verify.keyPair(cert, key);
    if (bad !== undefined) return { ok: false, message: bad };
  }
  return {
    ok: true,
    value: {
      ...(ca !== undefined ? { caCertificate: new Uint8Array(ca) } : {}),
      ...(cert !== undefined && key !== undefined
        ? { certificateChain: new Uint8Array(cert), privateKey: new Uint8Array(key) }
        : {}),
    },
  };
}
