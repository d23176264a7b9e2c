/**
 * `Listener` → `ListenerConfig`, with the `http_connection_manager` (RDS or inline routes, RBAC
 * filters) or `tcp_proxy` of each filter chain. Filter chains are chosen by
 * `filter_chain_match.destination_port` and `prefix_ranges` against the HBONE CONNECT
 * authority (`<VIP or pod IP>:<port>`); `filter_chain_matcher` is not supported.
 */
import { EnvoyType } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { convertHeaderMatch, convertStringMatch } from './matchers.ts';
import { ProtoReader } from './proto-reader.ts';
import { routeTableFrom } from './convert-route.ts';
import { convertFault } from './convert-fault.ts';
import { convertExtAuthz } from './convert-ext-authz.ts';
import { convertJwtAuthn, convertMetadataMatch } from './convert-jwt.ts';
import { convertLocalRateLimit } from './convert-local-ratelimit.ts';
import { convertTracing } from './convert-tracing.ts';
import { convertAccessLog, convertStats, isStatsFilter } from './convert-telemetry.ts';
import type {
  Cidr,
  Converted,
  DownstreamTls,
  ExtAuthzFilter,
  FaultConfig,
  FilterChain,
  HttpChain,
  JwtAuthnFilter,
  ListenerConfig,
  LocalRateLimitFilter,
  StatsConfig,
  Permission,
  Principal,
  RbacFilter,
  RbacPolicy,
  RbacRules,
  SocketAddress,
  TcpChain,
  TcpClusterWeight,
} from './types.ts';

/** Filter state key Istio's waypoint RBAC matches the HBONE peer's SPIFFE ID against. */
export const PEER_PRINCIPAL_KEY = 'io.istio.peer_principal';

/** HTTP filters with no effect here: the waypoint does their job itself (metrics, peer metadata). */
const NO_OP_HTTP_FILTERS = new Set([
  'istio.metadata_exchange',
  'istio.stats',
  'istio.alpn',
  'envoy.filters.http.grpc_stats',
  'envoy.filters.http.connect_authority',
]);

function typeOf(config: ProtoObject | undefined): string {
  const t = config?.['@type'];
  if (typeof t === 'string') return t.slice(t.lastIndexOf('/') + 1);
  const url = config?.type_url;
  return typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : '';
}

export function parseCidr(address: string, prefixLength: number | undefined): Cidr | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (v4 !== null) {
    const bytes = Uint8Array.from(v4.slice(1).map(Number));
    if (bytes.some((b, i) => b !== Number(v4[i + 1]))) return undefined;
    const len = prefixLength ?? 32;
    return len >= 0 && len <= 32 ? { family: 4, bytes, prefixLength: len } : undefined;
  }
  if (address.includes(':')) {
    const bytes = ipv6Bytes(address);
    const len = prefixLength ?? 128;
    return bytes !== undefined && len >= 0 && len <= 128
      ? { family: 6, bytes, prefixLength: len }
      : undefined;
  }
  return undefined;
}

export function ipv6Bytes(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] | undefined => {
    if (s === '') return [];
    const groups = s.split(':').map(g => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN));
    return groups.some(Number.isNaN) ? undefined : groups;
  };
  const head = parse(halves[0] ?? '');
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (head === undefined || tail === undefined) return undefined;
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return undefined;
  const groups = [...head, ...Array<number>(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

function cidrOf(r: ProtoReader, o: ProtoObject, path: string): Cidr | undefined {
  r.only(o, path, ['address_prefix', 'prefix_len']);
  const address = r.string(o, 'address_prefix') ?? '';
  const cidr = parseCidr(address, r.wrappedNumber(o, 'prefix_len'));
  if (cidr === undefined) r.problem(path, `${JSON.stringify(address)} is not an IP prefix`);
  return cidr;
}

function convertPermission(r: ProtoReader, p: ProtoObject, path: string): Permission {
  r.only(p, path, [
    'any',
    'and_rules',
    'or_rules',
    'not_rule',
    'header',
    'url_path',
    'destination_port',
    'destination_ip',
  ]);
  if (r.bool(p, 'any') === true) return { kind: 'any' };
  for (const key of ['and_rules', 'or_rules'] as const) {
    const set = r.object(p, key);
    if (set !== undefined) {
      return {
        kind: key === 'and_rules' ? 'and' : 'or',
        rules: r.list(set, 'rules').map((x, i) => convertPermission(r, x, `${path}.${key}.rules[${i}]`)),
      };
    }
  }
  const not = r.object(p, 'not_rule');
  if (not !== undefined) return { kind: 'not', rule: convertPermission(r, not, `${path}.not_rule`) };
  const header = r.object(p, 'header');
  if (header !== undefined) {
    const h = convertHeaderMatch(r, header, `${path}.header`);
    if (h !== undefined) return { kind: 'header', header: h };
  }
  const urlPath = r.object(p, 'url_path');
  if (urlPath !== undefined) {
    r.only(urlPath, `${path}.url_path`, ['path']);
    const m = convertStringMatch(r, r.object(urlPath, 'path') ?? {}, `${path}.url_path.path`);
    if (m !== undefined) return { kind: 'path', match: m };
  }
  const port = r.number(p, 'destination_port');
  if (port !== undefined) return { kind: 'destination-port', port };
  const ip = r.object(p, 'destination_ip');
  if (ip !== undefined) {
    const cidr = cidrOf(r, ip, `${path}.destination_ip`);
    if (cidr !== undefined) return { kind: 'destination-ip', cidr };
  }
  if (r.problems.length === 0) r.problem(path, 'a permission needs a rule');
  return { kind: 'not', rule: { kind: 'any' } };
}

function convertPrincipal(r: ProtoReader, p: ProtoObject, path: string): Principal {
  r.only(p, path, [
    'any',
    'and_ids',
    'or_ids',
    'not_id',
    'authenticated',
    'header',
    'filter_state',
    'source_ip',
    'direct_remote_ip',
    'remote_ip',
    'metadata',
  ]);
  for (const key of ['source_ip', 'direct_remote_ip', 'remote_ip']) {
    const ip = r.object(p, key);
    if (ip !== undefined) {
      const cidr = cidrOf(r, ip, `${path}.${key}`);
      if (cidr !== undefined) return { kind: 'remote-ip', cidr };
    }
  }
  if (r.bool(p, 'any') === true) return { kind: 'any' };
  for (const key of ['and_ids', 'or_ids'] as const) {
    const set = r.object(p, key);
    if (set !== undefined) {
      return {
        kind: key === 'and_ids' ? 'and' : 'or',
        ids: r.list(set, 'ids').map((x, i) => convertPrincipal(r, x, `${path}.${key}.ids[${i}]`)),
      };
    }
  }
  const not = r.object(p, 'not_id');
  if (not !== undefined) return { kind: 'not', id: convertPrincipal(r, not, `${path}.not_id`) };
  const authenticated = r.object(p, 'authenticated');
  if (authenticated !== undefined) {
    r.only(authenticated, `${path}.authenticated`, ['principal_name']);
    const name = r.object(authenticated, 'principal_name');
    return {
      kind: 'authenticated',
      match:
        name === undefined ? undefined : convertStringMatch(r, name, `${path}.authenticated.principal_name`),
    };
  }
  const state = r.object(p, 'filter_state');
  if (state !== undefined) {
    r.only(state, `${path}.filter_state`, ['key', 'string_match']);
    const key = r.string(state, 'key');
    if (key !== PEER_PRINCIPAL_KEY) {
      r.problem(
        `${path}.filter_state.key`,
        `only ${PEER_PRINCIPAL_KEY} is supported, got ${JSON.stringify(key)}`,
      );
    }
    const sm = r.object(state, 'string_match');
    return {
      kind: 'authenticated',
      match: sm === undefined ? undefined : convertStringMatch(r, sm, `${path}.filter_state.string_match`),
    };
  }
  const header = r.object(p, 'header');
  if (header !== undefined) {
    const h = convertHeaderMatch(r, header, `${path}.header`);
    if (h !== undefined) return { kind: 'header', header: h };
  }
  const metadata = r.object(p, 'metadata');
  if (metadata !== undefined) {
    const m = convertMetadataMatch(r, metadata, `${path}.metadata`);
    if (m !== undefined) return { kind: 'metadata', metadata: m };
  }
  if (r.problems.length === 0) r.problem(path, 'a principal needs an identifier');
  return { kind: 'not', id: { kind: 'any' } };
}

function convertRbacRules(r: ProtoReader, rules: ProtoObject, path: string): RbacRules {
  r.only(rules, path, ['action', 'policies'], ['audit_logging_options']);
  const action = r.string(rules, 'action') ?? 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG')
    r.problem(`${path}.action`, `unknown action ${action}`);
  const policies: RbacPolicy[] = [];
  const map = (r.object(rules, 'policies') ?? {}) as Record<string, ProtoObject>;
  for (const name of Object.keys(map).sort()) {
    const pp = `${path}.policies[${JSON.stringify(name)}]`;
    const policy = map[name] ?? {};
    r.only(policy, pp, ['permissions', 'principals']);
    policies.push({
      name,
      permissions: r
        .list(policy, 'permissions')
        .map((x, i) => convertPermission(r, x, `${pp}.permissions[${i}]`)),
      principals: r
        .list(policy, 'principals')
        .map((x, i) => convertPrincipal(r, x, `${pp}.principals[${i}]`)),
    });
  }
  return { action: action as RbacRules['action'], policies };
}

function convertRbacFilter(r: ProtoReader, name: string, c: ProtoObject, path: string): RbacFilter {
  r.only(
    c,
    path,
    ['rules', 'shadow_rules', 'shadow_rules_stat_prefix'],
    ['rules_stat_prefix', 'track_per_rule_stats'],
  );
  const rules = r.object(c, 'rules');
  const shadow = r.object(c, 'shadow_rules');
  const shadowPrefix = r.string(c, 'shadow_rules_stat_prefix');
  return {
    name,
    ...(shadowPrefix === undefined ? {} : { shadowRulesStatPrefix: shadowPrefix }),
    rules: rules === undefined ? undefined : convertRbacRules(r, rules, `${path}.rules`),
    shadowRules: shadow === undefined ? undefined : convertRbacRules(r, shadow, `${path}.shadow_rules`),
  };
}

const HCM_IGNORED = [
  'codec_type',
  'use_remote_address',
  'xff_num_trusted_hops',
  'skip_xff_append',
  'forward_client_cert_details',
  'set_current_client_cert_details',
  'upgrade_configs',
  'stream_idle_timeout',
  'request_timeout',
  'request_headers_timeout',
  'common_http_protocol_options',
  'http_protocol_options',
  'http2_protocol_options',
  'server_name',
  'server_header_transformation',
  'generate_request_id',
  'preserve_external_request_id',
  'internal_address_config',
  'request_id_extension',
  'strip_port_mode',
  'strip_any_host_port',
  'stream_error_on_invalid_http_message',
  'delayed_close_timeout',
  'drain_timeout',
  'max_request_headers_kb',
  'always_set_request_id_in_response',
  'via',
];

function convertHcm(r: ProtoReader, c: ProtoObject, path: string, version: string): HttpChain | undefined {
  r.only(
    c,
    path,
    [
      'stat_prefix',
      'rds',
      'route_config',
      'http_filters',
      'normalize_path',
      'merge_slashes',
      'path_with_escaped_slashes_action',
      'tracing',
      'access_log',
    ],
    HCM_IGNORED,
  );
  // The path is always normalised at least as RFC 3986 (Istio's BASE), whatever normalize_path says.
  const unescape = (r.string(c, 'path_with_escaped_slashes_action') ?? '').startsWith('UNESCAPE_');
  const pathNormalization: HttpChain['pathNormalization'] = unescape
    ? 'DECODE_AND_MERGE_SLASHES'
    : r.bool(c, 'merge_slashes') === true
      ? 'MERGE_SLASHES'
      : 'BASE';
  const rds = r.object(c, 'rds');
  const inline = r.object(c, 'route_config');
  let routes: HttpChain['routes'] | undefined;
  if (rds !== undefined) {
    r.only(rds, `${path}.rds`, ['route_config_name'], ['config_source']);
    const name = r.string(rds, 'route_config_name') ?? '';
    if (name === '') r.problem(`${path}.rds.route_config_name`, 'is empty');
    routes = { rds: name };
  } else if (inline !== undefined) {
    const nested = new ProtoReader();
    const table = routeTableFrom(nested, r.string(inline, 'name') ?? '', version, inline);
    for (const p of nested.problems) r.problem(`${path}.route_config`, p);
    routes = { inline: table };
  } else {
    r.problem(path, 'needs rds or route_config (scoped_routes is not supported)');
  }
  const rbac: RbacFilter[] = [];
  const jwt: JwtAuthnFilter[] = [];
  const extAuthz: ExtAuthzFilter[] = [];
  let fault: FaultConfig | undefined;
  const localRateLimits: LocalRateLimitFilter[] = [];
  let stats: StatsConfig | undefined;
  let router = false;
  const filters = r.list(c, 'http_filters');
  for (const [i, f] of filters.entries()) {
    const fp = `${path}.http_filters[${i}]`;
    r.only(f, fp, ['name', 'typed_config', 'is_optional', 'disabled']);
    const name = r.string(f, 'name') ?? '';
    const config = r.object(f, 'typed_config');
    const type = typeOf(config);
    if (r.bool(f, 'disabled') === true) continue;
    if (router) r.problem(fp, `filter ${JSON.stringify(name)} comes after the router`);
    if (type === EnvoyType.httpRbac)
      rbac.push(convertRbacFilter(r, name, config ?? {}, `${fp}.typed_config`));
    else if (type === EnvoyType.jwtAuthn)
      jwt.push(convertJwtAuthn(r, name, config ?? {}, `${fp}.typed_config`));
    else if (type === EnvoyType.extAuthz)
      extAuthz.push(convertExtAuthz(r, name, config ?? {}, `${fp}.typed_config`));
    else if (type === EnvoyType.fault) fault = convertFault(r, config ?? {}, `${fp}.typed_config`);
    else if (type === EnvoyType.localRateLimit)
      localRateLimits.push({
        name,
        config: convertLocalRateLimit(r, config ?? {}, `${fp}.typed_config`),
        beforeAuth: jwt.length === 0 && rbac.length === 0,
      });
    else if (isStatsFilter(config)) stats = convertStats(r, config, `${fp}.typed_config`);
    else if (type === EnvoyType.router || name === 'envoy.filters.http.router') router = true;
    else if (!NO_OP_HTTP_FILTERS.has(name) && r.bool(f, 'is_optional') !== true) {
      r.problem(
        fp,
        `HTTP filter ${JSON.stringify(name)} (${type === '' ? 'no typed_config' : type}) is not supported`,
      );
    }
  }
  if (!router) r.problem(`${path}.http_filters`, 'the last HTTP filter must be the router');
  if (routes === undefined) return undefined;
  const tracingProto = r.object(c, 'tracing');
  const tracing = tracingProto === undefined ? undefined : convertTracing(r, tracingProto, `${path}.tracing`);
  const accessLogs = r.list(c, 'access_log');
  const accessLog =
    accessLogs.length === 0 ? undefined : convertAccessLog(r, accessLogs, `${path}.access_log`);
  return {
    ...(tracing === undefined ? {} : { tracing }),
    ...(accessLog === undefined ? {} : { accessLog }),
    ...(stats === undefined ? {} : { stats }),
    kind: 'http',
    statPrefix: r.string(c, 'stat_prefix') ?? '',
    routes,
    jwt,
    rbac,
    ...(extAuthz.length > 0 ? { extAuthz } : {}),
    fault,
    ...(localRateLimits.length > 0 ? { localRateLimits } : {}),
    pathNormalization,
  };
}

function convertChain(
  r: ProtoReader,
  o: ProtoObject,
  path: string,
  version: string,
): FilterChain | undefined {
  r.only(o, path, ['name', 'filter_chain_match', 'filters', 'transport_socket'], ['metadata']);
  const m = r.object(o, 'filter_chain_match') ?? {};
  r.only(m, `${path}.filter_chain_match`, [
    'destination_port',
    'prefix_ranges',
    'transport_protocol',
    'server_names',
    'application_protocols',
  ]);
  const applicationProtocols = r.strings(m, 'application_protocols');
  const transport = r.string(m, 'transport_protocol');
  if (transport !== undefined && transport !== 'raw_buffer' && transport !== 'tls') {
    r.problem(`${path}.filter_chain_match.transport_protocol`, `${transport} is not supported`);
  }
  const serverNames = r.strings(m, 'server_names').map(n => n.toLowerCase());
  for (const [i, n] of serverNames.entries()) {
    if (n === '' || (n.includes('*') && !(n.startsWith('*.') && !n.slice(1).includes('*'))))
      r.problem(
        `${path}.filter_chain_match.server_names[${i}]`,
        `${JSON.stringify(n)} is neither a name nor a *.suffix wildcard`,
      );
  }
  const socket = r.object(o, 'transport_socket');
  const tls =
    socket === undefined ? undefined : convertTransportSocket(r, socket, `${path}.transport_socket`);
  const prefixRanges: Cidr[] = [];
  r.list(m, 'prefix_ranges').forEach((p, i) => {
    const address = r.string(p, 'address_prefix') ?? '';
    const cidr = parseCidr(address, r.wrappedNumber(p, 'prefix_len'));
    if (cidr === undefined)
      r.problem(
        `${path}.filter_chain_match.prefix_ranges[${i}]`,
        `${JSON.stringify(address)} is not an IP prefix`,
      );
    else prefixRanges.push(cidr);
  });
  const all = r.list(o, 'filters');
  // `istio.stats` network filters (upstream's TCP metrics config) may come before a tcp_proxy.
  let networkStats: StatsConfig | undefined;
  const leading = all.slice(0, -1);
  for (const [i, f] of leading.entries()) {
    const lp = `${path}.filters[${i}]`;
    r.only(f, lp, ['name', 'typed_config']);
    const c = r.object(f, 'typed_config');
    if (isStatsFilter(c)) networkStats = convertStats(r, c, `${lp}.typed_config`);
    else
      r.problem(
        lp,
        `network filter ${JSON.stringify(r.string(f, 'name') ?? '')} (${typeOf(c ?? {})}) is not supported before the last filter (only the istio.stats filter)`,
      );
  }
  const filters = all.slice(-1);
  if (filters.length !== 1) {
    r.problem(
      `${path}.filters`,
      `needs exactly one network filter (http_connection_manager or tcp_proxy), got ${filters.length}`,
    );
    return undefined;
  }
  const filter = filters[0] ?? {};
  const fp = `${path}.filters[${all.length - 1}]`;
  r.only(filter, fp, ['name', 'typed_config']);
  const config = r.object(filter, 'typed_config') ?? {};
  const type = typeOf(config);
  let action: HttpChain | TcpChain | undefined;
  if (type === EnvoyType.httpConnectionManager) {
    if (networkStats !== undefined)
      r.problem(`${path}.filters`, 'the istio.stats network filter only goes before a tcp_proxy');
    action = convertHcm(r, config, `${fp}.typed_config`, version);
  } else if (type === EnvoyType.tcpProxy) {
    r.only(
      config,
      `${fp}.typed_config`,
      ['stat_prefix', 'cluster', 'weighted_clusters'],
      ['access_log', 'idle_timeout', 'metadata_match'],
    );
    const tcp = convertTcpProxy(r, config, `${fp}.typed_config`);
    action = networkStats === undefined ? tcp : { ...tcp, stats: networkStats };
  } else {
    r.problem(
      fp,
      `network filter ${JSON.stringify(r.string(filter, 'name') ?? '')} (${type}) is not supported`,
    );
  }
  if (action === undefined) return undefined;
  if (transport === 'tls' && socket === undefined && action.kind !== 'tcp')
    r.problem(
      `${path}.filter_chain_match.transport_protocol`,
      'TLS passthrough (tls without a transport_socket) needs a tcp_proxy filter',
    );
  return {
    name: r.string(o, 'name') ?? '',
    match: {
      destinationPort: r.wrappedNumber(m, 'destination_port'),
      prefixRanges,
      ...(serverNames.length > 0 ? { serverNames } : {}),
      ...(transport === 'tls' || transport === 'raw_buffer' ? { transportProtocol: transport } : {}),
      ...(applicationProtocols.length > 0 ? { applicationProtocols } : {}),
    },
    action,
    ...(tls === undefined ? {} : { tls }),
  };
}

/** A `tcp_proxy`: one `cluster`, or `weighted_clusters` (weights ≥ 1, as Envoy validates). */
function convertTcpProxy(r: ProtoReader, config: ProtoObject, path: string): TcpChain {
  const statPrefix = r.string(config, 'stat_prefix') ?? '';
  const single = r.string(config, 'cluster') ?? '';
  const weighted = r.object(config, 'weighted_clusters');
  if (weighted === undefined) {
    if (single === '') r.problem(`${path}.cluster`, 'needs cluster or weighted_clusters');
    return { kind: 'tcp', statPrefix, cluster: single };
  }
  if (single !== '') r.problem(path, 'sets both cluster and weighted_clusters');
  r.only(weighted, `${path}.weighted_clusters`, ['clusters']);
  const clusters: TcpClusterWeight[] = [];
  r.list(weighted, 'clusters').forEach((c, i) => {
    const cp = `${path}.weighted_clusters.clusters[${i}]`;
    r.only(c, cp, ['name', 'weight']);
    const name = r.string(c, 'name') ?? '';
    const weight = r.number(c, 'weight') ?? 0;
    if (name === '') r.problem(`${cp}.name`, 'a weighted cluster needs a name');
    if (!Number.isInteger(weight) || weight < 1) r.problem(`${cp}.weight`, 'must be an integer ≥ 1');
    clusters.push({ name, weight });
  });
  if (clusters.length === 0) r.problem(`${path}.weighted_clusters.clusters`, 'needs at least one cluster');
  return { kind: 'tcp', statPrefix, cluster: clusters[0]?.name ?? '', weightedClusters: clusters };
}

/** A `DataSource` given inline (`inline_bytes`, base64 in the decoded form, or `inline_string`). */
function inlineData(r: ProtoReader, o: ProtoObject | undefined, path: string): string {
  if (o === undefined) {
    r.problem(path, 'is missing');
    return '';
  }
  r.only(o, path, ['inline_bytes', 'inline_string'], []);
  const bytes = r.string(o, 'inline_bytes');
  if (bytes !== undefined) return Buffer.from(bytes, 'base64').toString('utf8');
  const text = r.string(o, 'inline_string');
  if (text !== undefined) return text;
  r.problem(path, 'needs inline_bytes or inline_string (files and SDS are not supported)');
  return '';
}

/**
 * `envoy.transport_sockets.tls` with a `DownstreamTlsContext`: server certificates inline (the
 * contract with istiod's gateway listeners), ALPN, and client certificate validation
 * (`require_client_certificate` with an inline `validation_context.trusted_ca`: MUTUAL). SDS is
 * not supported.
 */
function convertTransportSocket(
  r: ProtoReader,
  socket: ProtoObject,
  path: string,
): DownstreamTls | undefined {
  r.only(socket, path, ['name', 'typed_config']);
  const config = r.object(socket, 'typed_config') ?? {};
  const type = typeOf(config);
  if (type !== EnvoyType.downstreamTlsContext) {
    r.problem(
      `${path}.typed_config`,
      `${type === '' ? 'no typed_config' : type} is not supported (expected DownstreamTlsContext)`,
    );
    return undefined;
  }
  const cp = `${path}.typed_config`;
  r.only(
    config,
    cp,
    ['common_tls_context', 'require_client_certificate'],
    ['require_sni', 'disable_stateless_session_resumption', 'session_timeout'],
  );
  const requireClient = r.wrappedBool(config, 'require_client_certificate') === true;
  const common = r.object(config, 'common_tls_context') ?? {};
  r.only(
    common,
    `${cp}.common_tls_context`,
    ['tls_certificates', 'alpn_protocols', 'validation_context'],
    ['tls_params'],
  );
  const validation = r.object(common, 'validation_context');
  let clientCa: string | undefined;
  if (validation !== undefined) {
    const vp = `${cp}.common_tls_context.validation_context`;
    r.only(validation, vp, ['trusted_ca']);
    clientCa = inlineData(r, r.object(validation, 'trusted_ca'), `${vp}.trusted_ca`);
  }
  if (requireClient && clientCa === undefined)
    r.problem(
      `${cp}.require_client_certificate`,
      'needs common_tls_context.validation_context.trusted_ca (the CA client certificates must chain to)',
    );
  if (!requireClient && clientCa !== undefined)
    r.problem(
      `${cp}.common_tls_context.validation_context`,
      'is only supported with require_client_certificate (optional client certificates are not)',
    );
  const certificates = r.list(common, 'tls_certificates').map((c, i) => {
    const p = `${cp}.common_tls_context.tls_certificates[${i}]`;
    r.only(c, p, ['certificate_chain', 'private_key']);
    return {
      certificateChain: inlineData(r, r.object(c, 'certificate_chain'), `${p}.certificate_chain`),
      privateKey: inlineData(r, r.object(c, 'private_key'), `${p}.private_key`),
    };
  });
  if (certificates.length === 0)
    r.problem(
      `${cp}.common_tls_context.tls_certificates`,
      'needs at least one certificate (tls_certificate_sds_secret_configs is not supported)',
    );
  return {
    certificates,
    alpn: r.strings(common, 'alpn_protocols'),
    ...(requireClient && clientCa !== undefined ? { clientCa } : {}),
  };
}

/** `address.socket_address` (TCP); other address kinds (internal listeners, pipes) are not bound. */
function socketAddressOf(r: ProtoReader, address: ProtoObject | undefined): SocketAddress | undefined {
  const socket = address === undefined ? undefined : r.object(address, 'socket_address');
  if (socket === undefined) return undefined;
  r.only(socket, 'address.socket_address', ['address', 'port_value', 'protocol'], ['ipv4_compat']);
  const protocol = r.string(socket, 'protocol');
  if (protocol !== undefined && protocol !== 'TCP')
    r.problem('address.socket_address.protocol', `${protocol} is not supported (TCP only)`);
  const host = r.string(socket, 'address') ?? '';
  const port = r.number(socket, 'port_value') ?? 0;
  if (host === '') r.problem('address.socket_address.address', 'is empty');
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    r.problem('address.socket_address.port_value', `${port} is not a port`);
  return { host, port };
}

/**
 * Upstream's HBONE termination listener: its job (TLS, HTTP/2 CONNECT, handing the inner stream
 * to `main_internal`) is the waypoint's own HBONE server, so it is accepted and has no chains.
 */
export const CONNECT_TERMINATE = 'connect_terminate';

/** The listener filter that sniffs HTTP/1.x and h2c (its name and typed config). */
const HTTP_INSPECTOR = 'envoy.filters.listener.http_inspector';
const HTTP_INSPECTOR_TYPE = 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';
/** Envoy's default `listener_filters_timeout`. */
export const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000;

export function convertListener(name: string, version: string, o: ProtoObject): Converted<ListenerConfig> {
  if (name === CONNECT_TERMINATE)
    return { ok: true, value: { name, version, chains: [], defaultChain: undefined } };
  const r = new ProtoReader();
  r.only(
    o,
    '',
    ['name', 'filter_chains', 'default_filter_chain', 'address'],
    // Listener-level socket settings do not apply (a waypoint serves HBONE on 15008; a
    // gateway binds the address and inspects TLS itself: `tls_inspector` has nothing to add).
    [
      'listener_filters',
      'traffic_direction',
      'use_original_dst',
      'bind_to_port',
      'internal_listener',
      'continue_on_listener_filters_timeout',
      'access_log',
      'per_connection_buffer_limit_bytes',
      'metadata',
      'stat_prefix',
      'listener_filters_timeout',
    ],
  );
  const own = r.string(o, 'name');
  if (own !== undefined && own !== name)
    r.problem('name', `is ${JSON.stringify(own)}, not the resource name ${JSON.stringify(name)}`);
  const chains = r
    .list(o, 'filter_chains')
    .map((c, i) => convertChain(r, c, `filter_chains[${i}]`, version))
    .filter(c => c !== undefined);
  const def = r.object(o, 'default_filter_chain');
  const defaultChain = def === undefined ? undefined : convertChain(r, def, 'default_filter_chain', version);
  // An internal listener (istiod's `main_internal`) has no chains while no Service is bound to
  // the waypoint yet: it then matches nothing (every CONNECT is refused with 503).
  const internal = o.internal_listener !== undefined && o.internal_listener !== null;
  if (chains.length === 0 && defaultChain === undefined && !internal && r.problems.length === 0) {
    r.problem('filter_chains', 'a listener needs at least one filter chain');
  }
  const address = socketAddressOf(r, r.object(o, 'address'));
  const httpInspector = r
    .list(o, 'listener_filters')
    .some(
      f =>
        r.string(f, 'name') === HTTP_INSPECTOR ||
        typeOf(r.object(f, 'typed_config') ?? {}) === HTTP_INSPECTOR_TYPE,
    );
  const timeoutMs = r.durationMs(o, 'listener_filters_timeout', '') ?? DEFAULT_LISTENER_FILTERS_TIMEOUT_MS;
  const value: ListenerConfig = {
    name,
    version,
    chains,
    defaultChain,
    ...(address === undefined ? {} : { address }),
    // A zero timeout is Envoy's "no timeout"; the waypoint still bounds the wait by the default.
    ...(httpInspector
      ? { httpInspector: { timeoutMs: timeoutMs > 0 ? timeoutMs : DEFAULT_LISTENER_FILTERS_TIMEOUT_MS } }
      : {}),
  };
  return r.problems.length > 0 ? { ok: false, problems: r.problems } : { ok: true, value };
}
