import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  RuleName,
  checkAppsNeverImportApps,
  checkEnvOnlyInConfig,
  checkHouseRules,
  checkNoCircular,
  envReadAllowed,
  findEnvReads,
  findPlatformConstruction,
} from './rules.ts';

const bad = join(import.meta.dirname, 'fixtures', 'bad');
const good = join(import.meta.dirname, 'fixtures', 'good');

describe('apps never import apps', () => {
  it('fails on a manifest dependency, an import by name and a relative import into another app', () => {
    const found = checkAppsNeverImportApps(bad).map(
      v => `${v.file}${v.line === undefined ? '' : `:${v.line}`}`,
    );
    expect(found.sort()).toEqual([
      'apps/alpha/package.json',
      'apps/alpha/src/imports-app-relative.ts:2',
      'apps/alpha/src/imports-app.ts:2',
    ]);
  });

  it('lets e2e import apps and passes a clean repository', () => {
    expect(checkAppsNeverImportApps(good)).toEqual([]);
  });
});

describe('env only in config', () => {
  it('fails on every spelling of an env read outside src/config.ts', () => {
    const found = checkEnvOnlyInConfig(bad).map(v => `${v.file}:${v.line}`);
    expect(found.sort()).toEqual([
      'apps/alpha/src/main.ts:2',
      'apps/alpha/src/sneaky-env.ts:2',
      'apps/alpha/src/sneaky-env.ts:4',
      'apps/alpha/src/sneaky-env.ts:5',
    ]);
  });

  it('exempts config.ts, tests and testing/ helpers', () => {
    expect(envReadAllowed('config.ts')).toBe(true);
    expect(envReadAllowed('proxy/inbound.test.ts')).toBe(true);
    expect(envReadAllowed('testing/fake-kube.ts')).toBe(true);
    expect(envReadAllowed('xds/testing/server.ts')).toBe(true);
    expect(envReadAllowed('main.ts')).toBe(false);
    expect(envReadAllowed('proxy/config.ts')).toBe(false);
    expect(checkEnvOnlyInConfig(good)).toEqual([]);
  });

  it('ignores comments, strings and other objects named env', () => {
    const text = [
      '// process.env.X',
      "const s = 'process.env';",
      'const env = { process: 1 };',
      'const o = { env: 2 };',
      'const x = o.env;',
      'const y = globalThis.process.env.Z;',
    ].join('\n');
    expect(findEnvReads(text)).toEqual([{ line: 6, what: 'process.env' }]);
  });
});

describe('no circular imports', () => {
  it('fails on a cycle between two files of an app', async () => {
    const found = await checkNoCircular(bad);
    expect(found).toHaveLength(1);
    expect(found[0]!.rule).toBe(RuleName.noCircular);
    expect(found[0]!.message).toMatch(
      /cycle-a\.ts -> .*cycle-b\.ts -> .*cycle-a\.ts|cycle-b\.ts -> .*cycle-a\.ts -> .*cycle-b\.ts/,
    );
  });

  it('passes a repository without cycles', async () => {
    expect(await checkNoCircular(good)).toEqual([]);
  });
});

describe('all rules together', () => {
  it('reports each rule on the bad fixture and nothing on the good one', async () => {
    const rules = new Set((await checkHouseRules(bad)).map(v => v.rule));
    expect(rules).toEqual(new Set(Object.values(RuleName)));
    expect(await checkHouseRules(good)).toEqual([]);
  });
});

describe('platform-from-runtime', () => {
  it('finds the ways an app could make its own logger or registry', () => {
    const text = [
      "import pino from 'pino';",
      'const a = new Logs({ format: "json", level: "info" });',
      'const b = Logs.wrap(root);',
      'const c = createLogger(opts);',
      'const d = pino();',
      'const e = createRegistry();',
      'const f = new client.Registry();',
      'collectDefaultMetrics({ register: f });',
      "const ok = createPlatform({ component: 'x' });",
    ].join('\n');
    expect(findPlatformConstruction(text).map(f => [f.line, f.what])).toEqual([
      [2, 'new Logs(...)'],
      [3, 'Logs.wrap(...)'],
      [4, 'createLogger(...)'],
      [5, 'pino(...)'],
      [6, 'createRegistry(...)'],
      [7, 'new Registry(...)'],
      [8, 'collectDefaultMetrics(...)'],
    ]);
  });
});
