// deploy/console: read-only RBAC covering exactly what the informers read, and env the config knows.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ENV } from './config.ts';
import { COLLECTIONS } from './kube-source.ts';

interface Doc {
  kind: string;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  spec?: { template?: { spec?: { containers?: { env?: { name: string }[] }[] } } };
}

const docs = parseAllDocuments(
  readFileSync(new URL('../../../deploy/console/console.yaml', import.meta.url), 'utf8'),
).map(d => d.toJS() as Doc);

describe('deploy/console', () => {
  it('grants only get, list and watch, on every collection the console watches and no other', () => {
    const role = docs.find(d => d.kind === 'ClusterRole')!;
    const granted = new Set<string>();
    for (const rule of (role.rules ?? []).filter(r => !r.resources.some(x => x.includes('/')))) {
      expect(rule.verbs.sort()).toEqual(['get', 'list', 'watch']);
      for (const g of rule.apiGroups)
        for (const r of rule.resources) granted.add(g === '' ? `/api/v1/${r}` : `/apis/${g}/v1/${r}`);
    }
    expect([...granted].sort()).toEqual(
      Object.values(COLLECTIONS)
        .map(c => c.path)
        .sort(),
    );
  });

  it('grants get on pods/log (the merged log view), pods/portforward (ztunnel config dumps) and no other subresource', () => {
    const role = docs.find(d => d.kind === 'ClusterRole')!;
    const sub = (role.rules ?? []).filter(r => r.resources.some(x => x.includes('/')));
    expect(sub).toEqual([
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/portforward'], verbs: ['get', 'create'] },
    ]);
  });

  it('sets only variables the console reads', () => {
    const env = docs.find(d => d.kind === 'Deployment')!.spec!.template!.spec!.containers![0]!.env ?? [];
    const known = new Set<string>(Object.values(ENV));
    expect(env.map(e => e.name).filter(n => !known.has(n))).toEqual([]);
  });
});
