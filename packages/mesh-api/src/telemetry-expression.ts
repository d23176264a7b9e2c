/**
 * The subset of CEL the Telemetry API's expressions are supported in (istiod validates with it,
 * the waypoint evaluates with it): metric `tagOverrides[].value` and access log `filter.expression`.
 *
 * - a value: a string literal (`'x'` or `"x"`), an integer, or an attribute: `request.headers['name']`,
 *   `request.host`, `request.method`, `request.path`, `request.url_path`, `request.scheme`,
 *   `request.protocol`, `request.id`, `response.code`, `response.headers['name']`,
 *   `response.flags`, `response.code_details`, `source.address`, `destination.port`;
 * - a condition: `<value> <op> <value>` with `==`, `!=`, `<`, `<=`, `>`, `>=`, joined with `&&`
 *   and `||` (`&&` binds tighter; no parentheses), or `true` / `false`.
 *
 * Anything else (functions, `has()`, ternaries, arithmetic) is not supported: parsing says so.
 */

export type TelemetryValue =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'attribute'; readonly name: string; readonly key?: string };

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type TelemetryCondition =
  | { readonly kind: 'const'; readonly value: boolean }
  | {
      readonly kind: 'compare';
      readonly op: CompareOp;
      readonly left: TelemetryValue;
      readonly right: TelemetryValue;
    }
  | { readonly kind: 'and' | 'or'; readonly terms: readonly TelemetryCondition[] };

export type ExpressionResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** The attributes without a key. */
export const TELEMETRY_ATTRIBUTES = [
  'request.host',
  'request.method',
  'request.path',
  'request.url_path',
  'request.scheme',
  'request.protocol',
  'request.id',
  'response.code',
  'response.flags',
  'response.code_details',
  'source.address',
  'destination.port',
] as const;
/** The attributes with a `['key']`. */
export const TELEMETRY_MAP_ATTRIBUTES = ['request.headers', 'response.headers'] as const;

const SUPPORTED = `supported: string literals, integers, ${TELEMETRY_ATTRIBUTES.join(', ')}, ${TELEMETRY_MAP_ATTRIBUTES.map(a => `${a}['name']`).join(', ')}`;

function unquote(text: string): string | undefined {
  const m = /^'([^'\\]*)'$/.exec(text) ?? /^"([^"\\]*)"$/.exec(text);
  return m?.[1];
}

/** One value (`request.headers['x-user']`, `'literal'`, `200`). */
export function parseTelemetryValue(input: string): ExpressionResult<TelemetryValue> {
  const text = input.trim();
  const literal = unquote(text);
  if (literal !== undefined) return { ok: true, value: { kind: 'string', value: literal } };
  if (/^-?\d+$/.test(text)) return { ok: true, value: { kind: 'int', value: Number(text) } };
  if ((TELEMETRY_ATTRIBUTES as readonly string[]).includes(text))
    return { ok: true, value: { kind: 'attribute', name: text } };
  const m = /^([a-z_.]+)\[\s*('[^'\\]*'|"[^"\\]*")\s*\]$/.exec(text);
  if (m !== null && (TELEMETRY_MAP_ATTRIBUTES as readonly string[]).includes(m[1]!))
    return {
      ok: true,
      value: { kind: 'attribute', name: m[1]!, key: unquote(m[2]!)!.toLowerCase() },
    };
  return { ok: false, error: `expression ${JSON.stringify(input)} is not supported (${SUPPORTED})` };
}

/** Splits on `sep` outside quotes. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (text.startsWith(sep, i)) {
      parts.push(text.slice(start, i));
      i += sep.length - 1;
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function parseComparison(input: string): ExpressionResult<TelemetryCondition> {
  const text = input.trim();
  if (text === 'true' || text === 'false')
    return { ok: true, value: { kind: 'const', value: text === 'true' } };
  for (const op of ['==', '!=', '<=', '>=', '<', '>'] as const) {
    const parts = splitOutsideQuotes(text, op);
    if (parts.length !== 2) continue;
    const left = parseTelemetryValue(parts[0]!);
    if (!left.ok) return left;
    const right = parseTelemetryValue(parts[1]!);
    if (!right.ok) return right;
    return { ok: true, value: { kind: 'compare', op, left: left.value, right: right.value } };
  }
  return {
    ok: false,
    error: `condition ${JSON.stringify(input)} is not supported (a comparison <value> <op> <value>, joined with && and ||; ${SUPPORTED})`,
  };
}

/** A condition (`response.code >= 400 && request.method == 'POST'`). */
export function parseTelemetryCondition(input: string): ExpressionResult<TelemetryCondition> {
  if (/[()]/.test(input.replace(/'[^']*'|"[^"]*"/g, '')))
    return {
      ok: false,
      error: `condition ${JSON.stringify(input)} is not supported (no parentheses or functions; ${SUPPORTED})`,
    };
  const ors: TelemetryCondition[] = [];
  for (const orPart of splitOutsideQuotes(input, '||')) {
    const ands: TelemetryCondition[] = [];
    for (const andPart of splitOutsideQuotes(orPart, '&&')) {
      const c = parseComparison(andPart);
      if (!c.ok) return c;
      ands.push(c.value);
    }
    ors.push(ands.length === 1 ? ands[0]! : { kind: 'and', terms: ands });
  }
  return { ok: true, value: ors.length === 1 ? ors[0]! : { kind: 'or', terms: ors } };
}

/** What attributes resolve against: a function from (name, key) to a string or number. */
export type AttributeLookup = (name: string, key: string | undefined) => string | number | undefined;

export function evaluateTelemetryValue(
  v: TelemetryValue,
  lookup: AttributeLookup,
): string | number | undefined {
  return v.kind === 'attribute' ? lookup(v.name, v.key) : v.value;
}

function compare(op: CompareOp, a: string | number | undefined, b: string | number | undefined): boolean {
  if (a === undefined || b === undefined) return op === '!=' ? a !== b : false;
  // CEL has no implicit conversion; an integer attribute against an integer compares numerically.
  const x = typeof a === 'number' && typeof b === 'number' ? a : String(a);
  const y = typeof a === 'number' && typeof b === 'number' ? b : String(b);
  switch (op) {
    case '==':
      return x === y;
    case '!=':
      return x !== y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

export function evaluateTelemetryCondition(c: TelemetryCondition, lookup: AttributeLookup): boolean {
  switch (c.kind) {
    case 'const':
      return c.value;
    case 'compare':
      return compare(c.op, evaluateTelemetryValue(c.left, lookup), evaluateTelemetryValue(c.right, lookup));
    case 'and':
      return c.terms.every(t => evaluateTelemetryCondition(t, lookup));
    case 'or':
      return c.terms.some(t => evaluateTelemetryCondition(t, lookup));
  }
}
