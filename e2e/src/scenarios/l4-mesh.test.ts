// Cluster tier: the L4 ambient mesh end to end on a 2-node local cluster (own name and slot, so
// it never clashes with the other cluster tests), installed from deploy/. One cluster is shared by
// the whole file. The scenario and its checks are `mesh/l4-scenario.ts`'s, which the operator's
// cluster test runs on a mesh the operator installed.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { L4_CHECKS, setUpL4Scenario, type L4Scenario } from '../mesh/l4-scenario.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { ScenarioContext } from '../mesh/scenario.ts';

const scenario = new ScenarioContext('scenarios');
let l4: L4Scenario | undefined;

describe('the L4 ambient mesh on a 2-node local cluster', () => {
  beforeAll(async () => {
    ({ cluster: scenario.cluster } = await startMeshCluster({ name: 'l4scen', slot: 9, nodes: 2 }));
    l4 = await setUpL4Scenario(scenario.kube(), 'l4-scenarios', 'l4-plain');
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  for (const check of L4_CHECKS) {
    it(
      check.name,
      async () => {
        if (l4 === undefined) throw new Error('the L4 scenario was not set up (see beforeAll)');
        await check.run(l4);
      },
      check.timeoutMs,
    );
  }
});
