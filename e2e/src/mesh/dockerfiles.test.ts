import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../kubelet/images.ts';

/** Build-context sources of a Dockerfile's `COPY` lines (not `--from=` stages). */
function contextSources(dockerfile: string): string[] {
  const out: string[] = [];
  for (const line of dockerfile.split('\n')) {
    const m = /^COPY\s+(?!--from)(.+)$/.exec(line.trim());
    if (!m) continue;
    const parts = m[1]!.split(/\s+/);
    out.push(...parts.slice(0, -1));
  }
  return out;
}

describe('Dockerfiles', () => {
  for (const app of ['istiod', 'ztunnel', 'cni-agent', 'waypoint']) {
    it(`apps/${app}/Dockerfile copies paths that exist and builds its own project`, () => {
      const text = readFileSync(join(repoRoot(), 'apps', app, 'Dockerfile'), 'utf8');
      const sources = contextSources(text);
      expect(sources.length).toBeGreaterThan(3);
      for (const s of sources) expect(existsSync(join(repoRoot(), s)), s).toBe(true);
      expect(text).toContain(`nx run @ambient-mesh/${app}:build`);
      expect(text).toMatch(/^FROM node:24-slim AS build$/m);
    });
  }
});
