import { defineConfig, mergeConfig } from 'vitest/config';
import { sharedConfig } from '../vitest.shared.ts';

// Each cluster-tier file starts its own local cluster (a real apiserver, etcd and node processes):
// on 2 cores, running them one file at a time is faster and steadier than in parallel.
export default mergeConfig(sharedConfig, defineConfig({ test: { fileParallelism: false } }));
