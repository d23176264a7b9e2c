// The ztunnel DaemonSet in deploy/ carries the scrape annotations Prometheus and Kiali rely on.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const MANIFEST = readFileSync(new URL('../../../deploy/ztunnel/ztunnel.yaml', import.meta.url), 'utf8');

describe('deploy/ztunnel pod template', () => {
  it('asks Prometheus to scrape the stats port', () => {
    expect(MANIFEST).toMatch(/^\s+prometheus\.io\/scrape: 'true'$/m);
    expect(MANIFEST).toMatch(/^\s+prometheus\.io\/port: '15020'$/m);
  });
});
