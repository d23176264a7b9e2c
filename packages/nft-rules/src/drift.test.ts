import { describe, expect, it } from 'vitest';
import { TableName } from './constants.ts';
import { canonicalJson, diffRuleset, parseNftListing } from './drift.ts';
import { UnexpectedOutputError } from './errors.ts';
import { inpodRuleset } from './inpod-ruleset.ts';
import { expectedObjects } from './ruleset-model.ts';

type Obj = Record<string, unknown>;

/** What nft would list for the ruleset: the expected objects plus handles and metainfo. */
function liveListing(objects: Obj[]): Obj[] {
  return [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    ...objects.map((o, i) => {
      const [kind, body] = Object.entries(o)[0]!;
      return { [kind]: { ...(body as Obj), handle: i + 1 } };
    }),
  ];
}

const isRuleOf = (o: Obj, chain: string): boolean => (o.rule as Obj | undefined)?.chain === chain;

describe('diffRuleset', () => {
  const ruleset = inpodRuleset();

  it('finds no drift when the listing matches, whatever the handles and foreign tables', () => {
    const listing = [
      ...liveListing(expectedObjects(ruleset)),
      { table: { family: 'inet', name: 'other', handle: 99 } },
    ];
    expect(diffRuleset(ruleset, listing)).toEqual([]);
  });

  it('reports a missing table, a missing rule, an unexpected rule and a changed chain', () => {
    const withoutRaw = expectedObjects(ruleset).filter(o => {
      const body = Object.values(o)[0] as Obj;
      return body.table !== TableName.raw && body.name !== TableName.raw;
    });
    const outputRuleIndex = withoutRaw.findIndex(o => isRuleOf(o, 'istio-output'));
    withoutRaw.splice(outputRuleIndex, 1);
    withoutRaw.push({
      rule: { family: 'inet', table: TableName.mangle, chain: 'istio-output', expr: [{ accept: null }] },
    });
    const chainIdx = withoutRaw.findIndex(o => (o.chain as Obj | undefined)?.name === 'output');
    const chain = withoutRaw[chainIdx]!.chain as Obj;
    withoutRaw[chainIdx] = { chain: { ...chain, prio: 0 } };

    const drift = diffRuleset(ruleset, liveListing(withoutRaw));
    expect(drift).toContainEqual({
      kind: 'missing',
      object: 'table inet istio-ambient-raw',
      detail: 'table does not exist',
    });
    expect(drift).toContainEqual(
      expect.objectContaining({ kind: 'missing', object: 'chain inet istio-ambient-nat istio-output' }),
    );
    expect(drift).toContainEqual({
      kind: 'unexpected',
      object: 'chain inet istio-ambient-mangle istio-output',
      detail: 'rule [{"accept":null}]',
    });
    expect(drift).toContainEqual(
      expect.objectContaining({ kind: 'changed', object: 'chain inet istio-ambient-nat output' }),
    );
  });

  it('reports reordered rules and a table that must be absent', () => {
    const noDns = inpodRuleset({ dnsCapture: false });
    const objects = expectedObjects(noDns);
    const idx = objects.map((o, i) => (isRuleOf(o, 'istio-output') ? i : -1)).filter(i => i >= 0);
    const [a, b] = [idx[0]!, idx[1]!];
    [objects[a], objects[b]] = [objects[b]!, objects[a]!];
    objects.push({ table: { family: 'inet', name: TableName.raw } });
    const drift = diffRuleset(noDns, liveListing(objects));
    expect(drift).toContainEqual(expect.objectContaining({ kind: 'reordered' }));
    expect(drift).toContainEqual({
      kind: 'unexpected',
      object: 'table inet istio-ambient-raw',
      detail: 'must not exist',
    });
  });
});

describe('parseNftListing and canonicalJson', () => {
  it('parses the nftables array and rejects other output', () => {
    expect(parseNftListing('{"nftables":[{"metainfo":{}}]}')).toEqual([{ metainfo: {} }]);
    expect(() => parseNftListing('Error: no')).toThrow(UnexpectedOutputError);
    expect(() => parseNftListing('{"x":1}')).toThrow(/no "nftables" array/);
  });

  it('ignores key order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
  });
});
