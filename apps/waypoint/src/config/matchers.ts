/**
 * Conversions shared by routes and RBAC: `StringMatcher`, `HeaderMatcher`, header value
 * options, and the pure matching functions over them.
 */
import type { ProtoObject } from '../xds/envoy-protos.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { HeaderMatch, HeaderMods, HeaderValueOption, StringMatch } from './types.ts';

export function convertStringMatch(r: ProtoReader, m: ProtoObject, path: string): StringMatch | undefined {
  r.only(m, path, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);
  const ignoreCase = r.bool(m, 'ignore_case') ?? false;
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const) {
    const value = r.string(m, kind);
    if (value !== undefined) return { kind, value: ignoreCase ? value.toLowerCase() : value, ignoreCase };
  }
  const safe = r.object(m, 'safe_regex');
  if (safe !== undefined) {
    r.only(safe, `${path}.safe_regex`, ['regex'], ['google_re2']);
    const regex = r.regex(r.string(safe, 'regex') ?? '', `${path}.safe_regex.regex`, ignoreCase ? 'i' : '');
    return regex === undefined ? undefined : { kind: 'regex', regex };
  }
  // An empty StringMatcher: Envoy reads it as exact "".
  return { kind: 'exact', value: '', ignoreCase };
}

export function convertHeaderMatch(r: ProtoReader, m: ProtoObject, path: string): HeaderMatch | undefined {
  r.only(m, path, [
    'name',
    'string_match',
    'exact_match',
    'prefix_match',
    'suffix_match',
    'contains_match',
    'safe_regex_match',
    'present_match',
    'invert_match',
  ]);
  const name = (r.string(m, 'name') ?? '').toLowerCase();
  if (name === '') {
    r.problem(`${path}.name`, 'a header matcher needs a name');
    return undefined;
  }
  const invert = r.bool(m, 'invert_match') ?? false;
  const sm = r.object(m, 'string_match');
  if (sm !== undefined) {
    const match = convertStringMatch(r, sm, `${path}.string_match`);
    return match === undefined ? undefined : { name, match, invert };
  }
  const legacy: [string, 'exact' | 'prefix' | 'suffix' | 'contains'][] = [
    ['exact_match', 'exact'],
    ['prefix_match', 'prefix'],
    ['suffix_match', 'suffix'],
    ['contains_match', 'contains'],
  ];
  for (const [key, kind] of legacy) {
    const value = r.string(m, key);
    if (value !== undefined) return { name, match: { kind, value, ignoreCase: false }, invert };
  }
  const safe = r.object(m, 'safe_regex_match');
  if (safe !== undefined) {
    const regex = r.regex(r.string(safe, 'regex') ?? '', `${path}.safe_regex_match.regex`);
    return regex === undefined ? undefined : { name, match: { kind: 'regex', regex }, invert };
  }
  const present = r.bool(m, 'present_match');
  // No match specifier: Envoy matches when the header is present.
  return { name, match: { kind: 'present', present: present ?? true }, invert };
}

export function stringMatches(match: StringMatch, value: string): boolean {
  if (match.kind === 'regex') return match.regex.test(value);
  const v = match.ignoreCase ? value.toLowerCase() : value;
  switch (match.kind) {
    case 'exact':
      return v === match.value;
    case 'prefix':
      return v.startsWith(match.value);
    case 'suffix':
      return v.endsWith(match.value);
    case 'contains':
      return v.includes(match.value);
  }
}

/** A request's headers for matching: lowercased names, pseudo-headers included, repeated values joined by `,`. */
export type RequestHeaders = ReadonlyMap<string, string>;

export function headerMatches(m: HeaderMatch, headers: RequestHeaders): boolean {
  const value = headers.get(m.name);
  let result: boolean;
  if (m.match.kind === 'present') result = (value !== undefined) === m.match.present;
  else result = value !== undefined && stringMatches(m.match, value);
  return m.invert ? !result : result;
}

function convertHeaderValue(r: ProtoReader, o: ProtoObject, path: string): HeaderValueOption | undefined {
  r.only(o, path, ['header', 'append', 'append_action', 'keep_empty_value']);
  const header = r.object(o, 'header') ?? {};
  r.only(header, `${path}.header`, ['key', 'value', 'raw_value']);
  const name = (r.string(header, 'key') ?? '').toLowerCase();
  if (name === '' || name.startsWith(':')) {
    r.problem(`${path}.header.key`, name === '' ? 'a header needs a name' : 'pseudo-headers cannot be set');
    return undefined;
  }
  const raw = header.raw_value;
  const value =
    r.string(header, 'value') ??
    (typeof raw === 'string' ? Buffer.from(raw, 'base64').toString('latin1') : '');
  const action = r.string(o, 'append_action');
  const append = r.wrappedBool(o, 'append');
  let mode: HeaderValueOption['mode'] = 'append';
  if (action === 'OVERWRITE_IF_EXISTS_OR_ADD' || append === false) mode = 'overwrite';
  else if (action === 'ADD_IF_ABSENT') mode = 'if-absent';
  else if (action === 'OVERWRITE_IF_EXISTS') {
    r.problem(`${path}.append_action`, 'OVERWRITE_IF_EXISTS is not supported');
  }
  return { name, value, mode };
}

/** Reads `<prefix>_headers_to_add` and `<prefix>_headers_to_remove`. */
export function convertHeaderMods(
  r: ProtoReader,
  obj: ProtoObject,
  prefix: 'request' | 'response',
  path: string,
): HeaderMods {
  const add: HeaderValueOption[] = [];
  r.list(obj, `${prefix}_headers_to_add`).forEach((o, i) => {
    const v = convertHeaderValue(r, o, `${path}.${prefix}_headers_to_add[${i}]`);
    if (v !== undefined) add.push(v);
  });
  const remove = r.strings(obj, `${prefix}_headers_to_remove`).map(h => h.toLowerCase());
  return { add, remove };
}

/** The fields `convertHeaderMods` reads, for `ProtoReader.only`. */
export const HEADER_MOD_FIELDS = [
  'request_headers_to_add',
  'request_headers_to_remove',
  'response_headers_to_add',
  'response_headers_to_remove',
] as const;
