/**
 * The config of a ztunnel under test: every port on 127.0.0.1:0, a 1 s grace period, xDS at the
 * given test server, and a bearer-token file in a fresh temp folder (removed by `cleanup`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config.ts';
import type { Config } from '../config.ts';

export interface TestConfig {
  readonly config: Config;
  /** Removes the token file's folder. */
  readonly cleanup: () => void;
}

export function testZtunnelConfig(xdsAddress: string): TestConfig {
  const dir = mkdtempSync(join(tmpdir(), 'ztunnel-test-'));
  const tokenPath = join(dir, 'istio-token');
  writeFileSync(tokenPath, 'token');
  const config: Config = {
    ...loadConfig({
      POD_NAME: 'ztunnel',
      POD_NAMESPACE: 'istio-system',
      NODE_NAME: 'node-1',
      XDS_ADDRESS: xdsAddress,
    }),
    adminAddress: { host: '127.0.0.1', port: 0 },
    statsAddress: { host: '127.0.0.1', port: 0 },
    readinessAddress: { host: '127.0.0.1', port: 0 },
    terminationGracePeriodMs: 1_000,
    connectionTerminationDeadlineMs: 1_000,
    tokenPath,
  };
  return {
    config,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
