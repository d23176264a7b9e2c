/**
 * A cluster's `transport_socket` `envoy.transport_sockets.tls` (`UpstreamTlsContext`) →
 * `UpstreamTls`: how the waypoint originates TLS to endpoints outside the mesh (istiod's
 * DestinationRule `tls` for a ServiceEntry host, see `translate-upstream-tls.ts` there).
 *
 * Honoured: `sni`; `common_tls_context.tls_certificates[0]` (client certificate, inline);
 * `validation_context.trusted_ca` (inline, or `filename` of the system bundle: Node's default
 * roots); `match_typed_subject_alt_names` and `match_subject_alt_names` (exact, prefix, suffix,
 * contains, safe_regex); `alpn_protocols`. No `validation_context`: the peer is not verified
 * (Envoy's behaviour, upstream's `insecureSkipVerify`). Like Envoy, the host name is not checked
 * against the certificate unless SAN matchers ask for it. Upstream's `ISTIO_MUTUAL` shape is
 * honoured too: SDS `default` (`tls_certificate_sds_secret_configs`) is the waypoint's own
 * workload certificate, SDS `ROOTCA` (`combined_validation_context`) its mesh roots. Other SDS
 * names and files are not supported (reported).
 */
import { createHash } from 'node:crypto';
import { EnvoyType } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { SanMatch, UpstreamTls } from './types.ts';

/** The system bundle paths a `trusted_ca.filename` may name (Node's default roots stand for them). */
export const SYSTEM_CA_FILES: ReadonlySet<string> = new Set([
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
]);

const SAN_TYPES = new Set(['DNS', 'URI', 'IP_ADDRESS', 'EMAIL']);
/** Upstream's SDS names: the proxy's workload certificate and the mesh roots. */
const WORKLOAD_SECRET = 'default';
const ROOT_SECRET = 'ROOTCA';

function typeOf(config: ProtoObject | undefined): string {
  const t = config?.['@type'] ?? config?.type_url;
  return typeof t === 'string' ? t.slice(t.lastIndexOf('/') + 1) : '';
}

/** A `DataSource`: inline bytes (base64 in the decoded form) or string. */
function inline(r: ProtoReader, o: ProtoObject | undefined, path: string): string | undefined {
  if (o === undefined) {
    r.problem(path, 'is missing');
    return undefined;
  }
  r.only(o, path, ['inline_bytes', 'inline_string']);
  const bytes = r.string(o, 'inline_bytes');
  if (bytes !== undefined) return Buffer.from(bytes, 'base64').toString('utf8');
  const text = r.string(o, 'inline_string');
  if (text !== undefined) return text;
  r.problem(path, 'needs inline_bytes or inline_string (files and SDS are not supported)');
  return undefined;
}

function stringMatcher(r: ProtoReader, m: ProtoObject, path: string): SanMatch['match'] | undefined {
  r.only(m, path, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);
  const ignoreCase = r.bool(m, 'ignore_case') ?? false;
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const) {
    const value = r.string(m, kind);
    if (value !== undefined) return { kind, value, ignoreCase };
  }
  const safe = r.object(m, 'safe_regex');
  if (safe !== undefined) {
    const regex = r.regex(r.string(safe, 'regex') ?? '', `${path}.safe_regex`, ignoreCase ? 'i' : '');
    return regex === undefined ? undefined : { kind: 'regex', regex };
  }
  r.problem(path, 'needs exact, prefix, suffix, contains or safe_regex');
  return undefined;
}

/** Converts an `envoy.transport_sockets.tls` socket; `undefined` (with problems) when unusable. */
export function convertUpstreamTls(
  r: ProtoReader,
  socket: ProtoObject,
  path: string,
): UpstreamTls | undefined {
  r.only(socket, path, ['name', 'typed_config']);
  const config = r.object(socket, 'typed_config') ?? {};
  const type = typeOf(config);
  if (type !== EnvoyType.upstreamTlsContext) {
    r.problem(
      `${path}.typed_config`,
      `${type === '' ? 'no typed_config' : type} is not supported (expected UpstreamTlsContext)`,
    );
    return undefined;
  }
  const cp = `${path}.typed_config`;
  const before = r.problems.length;
  r.only(
    config,
    cp,
    ['common_tls_context', 'sni'],
    [
      'allow_renegotiation',
      'max_session_keys',
      'enforce_rsa_key_usage',
      'auto_host_sni',
      'auto_sni_san_validation',
    ],
  );
  const common = r.object(config, 'common_tls_context') ?? {};
  const ccp = `${cp}.common_tls_context`;
  r.only(
    common,
    ccp,
    [
      'tls_certificates',
      'validation_context',
      'alpn_protocols',
      'tls_certificate_sds_secret_configs',
      'combined_validation_context',
    ],
    ['tls_params'],
  );
  const certs = r.list(common, 'tls_certificates');
  const sdsCerts = r.list(common, 'tls_certificate_sds_secret_configs');
  if (certs.length + sdsCerts.length > 1)
    r.problem(`${ccp}.tls_certificates`, 'only one client certificate is supported');
  let clientCertificate: UpstreamTls['clientCertificate'];
  const cert = certs[0];
  if (cert !== undefined) {
    const p = `${ccp}.tls_certificates[0]`;
    r.only(cert, p, ['certificate_chain', 'private_key']);
    const chain = inline(r, r.object(cert, 'certificate_chain'), `${p}.certificate_chain`);
    const key = inline(r, r.object(cert, 'private_key'), `${p}.private_key`);
    if (chain !== undefined && key !== undefined)
      clientCertificate = { kind: 'inline', certificateChain: chain, privateKey: key };
  }
  const sdsCert = sdsCerts[0];
  if (sdsCert !== undefined) {
    // Upstream's ISTIO_MUTUAL: SDS `default` is the proxy's own workload certificate.
    const name = r.string(sdsCert, 'name') ?? '';
    if (name === WORKLOAD_SECRET) clientCertificate = { kind: 'workload' };
    else
      r.problem(
        `${ccp}.tls_certificate_sds_secret_configs[0].name`,
        `SDS secret ${JSON.stringify(name)} is not supported (only "default", the waypoint's own certificate)`,
      );
  }
  let trustedCa: UpstreamTls['trustedCa'];
  const subjectAltNames: SanMatch[] = [];
  const combined = r.object(common, 'combined_validation_context');
  let validation = r.object(common, 'validation_context');
  let vp = `${ccp}.validation_context`;
  if (combined !== undefined) {
    const cvp = `${ccp}.combined_validation_context`;
    r.only(combined, cvp, ['default_validation_context', 'validation_context_sds_secret_config']);
    const name = r.string(r.object(combined, 'validation_context_sds_secret_config') ?? {}, 'name') ?? '';
    if (name !== ROOT_SECRET)
      r.problem(
        `${cvp}.validation_context_sds_secret_config.name`,
        `SDS secret ${JSON.stringify(name)} is not supported (only "ROOTCA", the mesh roots)`,
      );
    trustedCa = { kind: 'mesh' };
    validation = r.object(combined, 'default_validation_context') ?? {};
    vp = `${cvp}.default_validation_context`;
    if (r.object(validation, 'trusted_ca') !== undefined)
      r.problem(`${vp}.trusted_ca`, 'is not supported next to ROOTCA');
  }
  if (validation !== undefined) {
    r.only(validation, vp, ['trusted_ca', 'match_typed_subject_alt_names', 'match_subject_alt_names']);
    const ca = r.object(validation, 'trusted_ca');
    const file = ca === undefined ? undefined : r.string(ca, 'filename');
    if (combined !== undefined) {
      // The roots are ROOTCA's (above); only the SAN matchers come from here.
    } else if (ca === undefined || (file !== undefined && SYSTEM_CA_FILES.has(file)))
      trustedCa = { kind: 'system' };
    else if (file !== undefined)
      r.problem(`${vp}.trusted_ca.filename`, `${file} is not supported (only the system bundle, or inline)`);
    else {
      const pem = inline(r, ca, `${vp}.trusted_ca`);
      if (pem !== undefined) trustedCa = { kind: 'pem', pem };
    }
    r.list(validation, 'match_typed_subject_alt_names').forEach((m, i) => {
      const p = `${vp}.match_typed_subject_alt_names[${i}]`;
      r.only(m, p, ['san_type', 'matcher'], ['oid']);
      const sanType = r.string(m, 'san_type') ?? '';
      if (!SAN_TYPES.has(sanType)) {
        r.problem(`${p}.san_type`, `${sanType || 'SAN_TYPE_UNSPECIFIED'} is not supported`);
        return;
      }
      const match = stringMatcher(r, r.object(m, 'matcher') ?? {}, `${p}.matcher`);
      if (match !== undefined) subjectAltNames.push({ type: sanType as SanMatch['type'], match });
    });
    r.list(validation, 'match_subject_alt_names').forEach((m, i) => {
      const match = stringMatcher(r, m, `${vp}.match_subject_alt_names[${i}]`);
      if (match !== undefined) subjectAltNames.push({ type: undefined, match });
    });
  }
  if (r.problems.length > before) return undefined;
  const sniText = r.string(config, 'sni');
  const sni = sniText === undefined || sniText === '' ? undefined : sniText;
  const alpn = r.strings(common, 'alpn_protocols');
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        sni,
        trustedCa,
        subjectAltNames.map(s => [s.type, s.match.kind, 'regex' in s.match ? s.match.regex.source : s.match]),
        clientCertificate,
        alpn,
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  return { sni, trustedCa, subjectAltNames, clientCertificate, alpn, key };
}
