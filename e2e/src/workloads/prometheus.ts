// The local cluster's prom/prometheus image (e2e/images.json): Debian's Prometheus, with the pod
// discovery it is built without provided by a targets file (../prometheus/pod-sd.ts). Takes the
// image's arguments (--config.file, --storage.tsdb.path, ...), writes the rewritten configuration
// and the targets file under the storage path, refreshes the targets every 2 s from the pods API
// (the pod's service account, in-cluster), and runs `prometheus` until it exits or a signal.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '@ambient-mesh/errors';
import { KubeClient } from '@ambient-mesh/kube';
import { parse, stringify } from 'yaml';
import { podTargetGroups, withPodFileSd, type PodLike, type PrometheusConfig } from '../prometheus/pod-sd.ts';

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string =>
  args.find(a => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const configFile = flag('config.file', '/etc/prometheus/prometheus.yml');
const storage = flag('storage.tsdb.path', '/prometheus');
const dir = join(storage, 'local-sd');
mkdirSync(dir, { recursive: true });
const targetsFile = join(dir, 'pods.json');
const localConfig = join(dir, 'prometheus.yml');

const { config, rewritten } = withPodFileSd(
  parse(readFileSync(configFile, 'utf8')) as PrometheusConfig,
  targetsFile,
);
writeFileSync(localConfig, stringify(config));

async function writeTargets(client: KubeClient): Promise<void> {
  const pods = (await client.list<PodLike>('/api/v1/pods')).items;
  writeFileSync(`${targetsFile}.tmp`, JSON.stringify(pods.flatMap(podTargetGroups)));
  renameSync(`${targetsFile}.tmp`, targetsFile); // whole: Prometheus never reads half a file
}

let timer: NodeJS.Timeout | undefined;
if (rewritten) {
  writeFileSync(targetsFile, '[]');
  const client = KubeClient.inCluster();
  const refresh = (): void => {
    writeTargets(client)
      .catch((e: unknown) => {
        console.error(`pod discovery: ${errorMessage(e)}`);
      })
      .finally(() => {
        timer = setTimeout(refresh, 2_000);
      });
  };
  refresh();
}

const child = spawn(
  PROMETHEUS,
  [...args.filter(a => !a.startsWith('--config.file=')), `--config.file=${localConfig}`],
  { stdio: 'inherit' },
);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  process.exit(code ?? (signal === null ? 1 : 0));
});
child.on('error', e => {
  console.error(`cannot run ${PROMETHEUS}: ${e.message} (tools/install-deps.d/prometheus.sh installs it)`);
  process.exit(1);
});
