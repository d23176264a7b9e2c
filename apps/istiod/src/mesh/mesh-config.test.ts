import { describe, expect, it } from 'vitest';
import { MeshConfigError } from '../errors.ts';
import { parseMeshConfig } from './mesh-config.ts';

const defaults = { rootNamespace: 'istio-system', trustDomain: 'cluster.local' };

describe('parseMeshConfig', () => {
  it('gives upstream defaults for a missing or empty mesh key', () => {
    for (const text of [undefined, '', '  \n', '# only a comment\n']) {
      const r = parseMeshConfig(text, defaults);
      expect(r).toMatchObject({
        ok: true,
        value: { rootNamespace: 'istio-system', trustDomain: 'cluster.local', discoverySelectors: [] },
      });
    }
  });

  it('reads trustDomain, rootNamespace and discoverySelectors, and keeps other fields', () => {
    const r = parseMeshConfig(
      [
        'trustDomain: example.org',
        'rootNamespace: mesh-root',
        'accessLogFile: /dev/stdout',
        'discoverySelectors:',
        '  - matchLabels: { team: a }',
        '  - matchExpressions: [{ key: env, operator: In, values: [prod] }]',
      ].join('\n'),
      defaults,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.trustDomain).toBe('example.org');
    expect(r.value.rootNamespace).toBe('mesh-root');
    expect(r.value.discoverySelectors).toEqual([
      { matchLabels: { team: 'a' } },
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
    ]);
    expect(r.value.raw['accessLogFile']).toBe('/dev/stdout');
  });

  it.each([
    ['not: [yaml', 'not YAML'],
    ['- a list', 'must be a mapping'],
    ['trustDomain: 3', 'trustDomain must be a string'],
    ['discoverySelectors: { matchLabels: {} }', 'discoverySelectors must be a list'],
    ['discoverySelectors: [{ matchLabels: { a: 1 } }]', 'discoverySelectors[0].matchLabels'],
    ['discoverySelectors: [{ matchExpressions: [{ key: a, operator: Has }] }]', 'operator must be'],
  ])('refuses %j with a typed error', (text, message) => {
    const r = parseMeshConfig(text, defaults);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBeInstanceOf(MeshConfigError);
    expect(r.error.code).toBe('ISTIOD_MESH_CONFIG_INVALID');
    expect(r.error.message).toContain(message);
  });
});
