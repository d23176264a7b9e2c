/**
 * The state every cluster-tier scenario file keeps: its cluster (set by `beforeAll`), the pods it
 * set up by name, and its `[tag]` log lines with the setup and wall times. The methods are bound,
 * so a file may take them apart (`const { log, kube, pod } = scenario`).
 */
import type { Cluster } from '../cluster.ts';

export class ScenarioContext<P = unknown> {
  readonly tag: string;
  readonly started = Date.now();
  /** Set once the file's cluster started. */
  cluster: Cluster | undefined;
  readonly pods = new Map<string, P>();

  constructor(tag: string) {
    this.tag = tag;
  }

  readonly log = (line: string): void => {
    console.log(`[${this.tag}] ${line}`);
  };

  readonly kube = (): Cluster => {
    if (this.cluster === undefined) throw new Error('the cluster did not start (see beforeAll)');
    return this.cluster;
  };

  readonly pod = (name: string): P => {
    const p = this.pods.get(name);
    if (p === undefined) throw new Error(`pod ${name} was not set up`);
    return p;
  };

  readonly logSetupTime = (): void => {
    this.log(`setup took ${((Date.now() - this.started) / 1000).toFixed(1)} s`);
  };

  readonly logWallTime = (): void => {
    this.log(`wall time ${((Date.now() - this.started) / 1000).toFixed(1)} s`);
  };
}
