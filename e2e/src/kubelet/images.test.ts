/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes, but the API speaks plain JSON: plain objects of those shapes are what we send and receive. */
import { describe, expect, it } from 'vitest';
import { defaultCacheRoot } from '../layout.ts';
import {
  expandVars,
  imageBuilds,
  imageName,
  loadImageMap,
  repoRoot,
  resolveArgv,
  type ImageMap,
} from './images.ts';
import { mountScript } from './mounts.ts';
import { fieldRefValue } from './volumes.ts';

const map: ImageMap = {
  images: { 'ambient-mesh/echo': { command: ['{node}', 'echo.ts'], args: ['--port', '8080'] } },
};

describe('image map', () => {
  it('strips tags and digests but keeps registry ports', () => {
    expect(imageName('ambient-mesh/echo:0.1.0')).toBe('ambient-mesh/echo');
    expect(imageName('localhost:5000/echo@sha256:abc')).toBe('localhost:5000/echo');
    expect(imageName('localhost:5000/echo')).toBe('localhost:5000/echo');
  });

  it('follows Kubernetes command/args override rules', () => {
    expect(resolveArgv(map, 'ambient-mesh/echo:1', undefined, undefined, '/n')).toEqual([
      '/n',
      'echo.ts',
      '--port',
      '8080',
    ]);
    expect(resolveArgv(map, 'ambient-mesh/echo', undefined, ['--port', '9'], '/n')).toEqual([
      '/n',
      'echo.ts',
      '--port',
      '9',
    ]);
    expect(resolveArgv(map, 'ambient-mesh/echo', ['/bin/true'], undefined, '/n')).toEqual(['/bin/true']);
  });

  it('puts the build cache in place of {cache} (Go-built tools such as cert-manager-signer)', () => {
    const withCache: ImageMap = {
      images: { 'ambient-mesh/tool': { command: ['{cache}/tool/bin/t'], args: [] } },
    };
    expect(resolveArgv(withCache, 'ambient-mesh/tool:1', undefined, undefined, '/n')).toEqual([
      `${defaultCacheRoot()}/tool/bin/t`,
    ]);
  });

  it('rejects an unknown image without a command, naming the image map', () => {
    expect(() => resolveArgv(map, 'nginx:1', undefined, undefined)).toThrow(/images\.json/);
  });

  it("lists the images' build commands with {node}, {repo} and {cache} substituted", () => {
    const withBuild: ImageMap = {
      images: {
        'ambient-mesh/echo': { command: ['{node}', 'echo.ts'] },
        'ambient-mesh/bundled': {
          build: ['{node}', '{repo}/b.mjs', '{cache}/x'],
          command: ['{node}', 'b.mjs'],
        },
      },
    };
    expect(imageBuilds(withBuild, '/n')).toEqual([
      { image: 'ambient-mesh/bundled', argv: ['/n', `${repoRoot()}/b.mjs`, `${defaultCacheRoot()}/x`] },
    ]);
  });

  it('builds the ztunnel bundle its local-cluster command runs (the shipping form, as in the image)', () => {
    const local = loadImageMap();
    const command = local.images['ambient-mesh/ztunnel']?.command ?? [];
    const builds = imageBuilds(local, '/n').find(b => b.image === 'ambient-mesh/ztunnel');
    expect(builds?.argv).toEqual(['/n', `${repoRoot()}/apps/ztunnel/tools/bundle.mjs`]);
    expect(command.at(-1)).toBe('{repo}/apps/ztunnel/dist/ztunnel.mjs');
  });

  it('builds the waypoint bundle its local-cluster command runs (the shipping form, as in the image)', () => {
    const local = loadImageMap();
    const command = local.images['ambient-mesh/waypoint']?.command ?? [];
    const builds = imageBuilds(local, '/n').find(b => b.image === 'ambient-mesh/waypoint');
    expect(builds?.argv).toEqual(['/n', `${repoRoot()}/apps/waypoint/tools/bundle.mjs`]);
    expect(command.at(-1)).toBe('{repo}/apps/waypoint/dist/waypoint.mjs');
    expect(command.some(arg => arg.startsWith('--conditions'))).toBe(false);
  });

  it('expands $(VAR) and keeps $$ and unknown references', () => {
    expect(expandVars('$(A)-$$(A)-$(B)', { A: 'x' })).toBe('x-$(A)-$(B)');
  });
});

describe('container mounts and downward API', () => {
  it('bind-mounts each volume, read-only when asked, then execs the argv', () => {
    const s = mountScript([{ source: "/s/it's", target: '/t', readOnly: true }], '/work');
    expect(s.split('\n')).toEqual([
      'set -e',
      "mount --bind '/s/it'\\''s' '/t'",
      "mount -o remount,bind,ro '/t'",
      "cd '/work'",
      'exec "$@"',
    ]);
  });

  it('keeps the repository visible when a volume is mounted over one of its ancestors', () => {
    const keep = [
      { path: '/tmp/clone/repo', stash: '/state/.keep-0' },
      { path: '/opt/node/bin', stash: '/state/.keep-1' },
    ];
    const s = mountScript([{ source: '/state/empty-tmp', target: '/tmp', readOnly: false }], undefined, keep);
    expect(s.split('\n')).toEqual([
      'set -e',
      "mount --bind '/tmp/clone/repo' '/state/.keep-0'",
      "mount --bind '/state/empty-tmp' '/tmp'",
      "mkdir -p '/tmp/clone/repo'",
      "mount --bind '/state/.keep-0' '/tmp/clone/repo'",
      'exec "$@"',
    ]);
    // A volume that shadows nothing we keep adds no extra mounts; one at the kept path itself wins.
    expect(
      mountScript([{ source: '/v', target: '/tmp/clone/repo', readOnly: false }], undefined, keep),
    ).not.toContain('.keep-0');
  });

  it('resolves fieldRefs including labels', () => {
    const pod = {
      metadata: { name: 'p', namespace: 'n', uid: 'u', labels: { app: 'echo' } },
      spec: { nodeName: 'node-0', containers: [] },
      status: { podIP: '10.0.0.2' },
    };
    expect(fieldRefValue(pod, 'metadata.name')).toBe('p');
    expect(fieldRefValue(pod, "metadata.labels['app']")).toBe('echo');
    expect(fieldRefValue(pod, 'spec.nodeName')).toBe('node-0');
    expect(fieldRefValue(pod, 'status.podIP')).toBe('10.0.0.2');
    expect(fieldRefValue(pod, 'spec.serviceAccountName')).toBe('default');
  });
});
