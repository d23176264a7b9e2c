/** The agent's config for tests: node `node-a`, ephemeral ports, no drift check, no netns scan. */
import { loadConfig, type Config } from '../config.ts';

/** `runDir` is the agent's run dir, `zdsPath` ztunnel's socket; `env` adds or overrides settings. */
export function testAgentConfig(
  runDir: string,
  zdsPath: string,
  env: Readonly<Record<string, string>> = {},
): Config {
  return loadConfig({
    NODE_NAME: 'node-a',
    CNI_AGENT_RUN_DIR: runDir,
    ZTUNNEL_UDS_ADDRESS: zdsPath,
    READINESS_PORT: '0',
    MONITORING_PORT: '0',
    AMBIENT_DRIFT_CHECK_INTERVAL_SECONDS: '0',
    AMBIENT_NETNS_SCAN_DIRS: '',
    ...env,
  });
}
