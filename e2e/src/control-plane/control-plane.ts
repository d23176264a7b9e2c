import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Binaries } from '../binaries.ts';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { waitFor, type CommandRunner } from '../exec.ts';
import { KubeClient } from '@ambient-mesh/kube';
import { apiserverUrl, type ClusterLayout } from '../layout.ts';
import { ManagedProcess } from '../managed-process.ts';
import { Pki, writeKubeconfig } from './pki.ts';

export interface ControlPlaneOptions {
  readonly layout: ClusterLayout;
  readonly binaries: Binaries;
  readonly run: CommandRunner;
  readonly progress: (line: string) => void;
  /** Called with each started process so the caller can record its pid for the reaper. */
  readonly onProcess: (proc: ManagedProcess) => void;
}

export interface ControlPlane {
  readonly pki: Pki;
  /** Admin (system:masters) kubeconfig for the root netns. */
  readonly adminKubeconfig: string;
  readonly client: KubeClient;
  readonly processes: readonly ManagedProcess[];
  /** Writes a kubeconfig for a client identity signed by the cluster CA. */
  kubeconfigFor(name: string, user: string, group?: string): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

async function httpOk(url: string): Promise<true | undefined> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return res.ok ? true : undefined;
}

/**
 * Starts etcd, kube-apiserver (envtest's flags plus service-account issuing, no priority and
 * fairness), kube-controller-manager and kube-scheduler as processes in the root netns. The
 * apiserver listens only on the fabric address (the root end of our veth).
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { layout, binaries, progress } = opts;
  const dir = join(layout.stateDir, 'control-plane');
  const logs = join(layout.stateDir, 'logs');
  await mkdir(dir, { recursive: true });
  await mkdir(logs, { recursive: true });
  const processes: ManagedProcess[] = [];
  const start = (name: string, argv: string[]): ManagedProcess => {
    const proc = new ManagedProcess({ name, argv, logFile: join(logs, `${name}.log`) });
    processes.push(proc);
    opts.onProcess(proc);
    return proc;
  };
  const stop = async (): Promise<void> => {
    for (const p of [...processes].reverse()) await p.stop(10_000);
  };
  const failIfExited = (proc: ManagedProcess): void => {
    if (!proc.running) {
      throw new ClusterError(
        ClusterErrorCode.Timeout,
        `${proc.name} exited during start-up; read ${proc.logFile}`,
      );
    }
  };

  try {
    progress('certificates');
    const pki = new Pki(join(layout.stateDir, 'pki'), opts.run);
    await pki.init();
    const server = apiserverUrl(layout);
    const serving = await pki.serving(
      'apiserver',
      [
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        `kubernetes.default.svc.${layout.clusterDomain}`,
        'localhost',
      ],
      [layout.apiserverAddress, layout.kubernetesServiceIp, '127.0.0.1'],
    );
    const kubeletClient = await pki.client('apiserver-kubelet-client', {
      commonName: 'kube-apiserver-kubelet-client',
      organization: 'system:masters',
    });
    const kubeconfigFor = async (name: string, user: string, group?: string): Promise<string> => {
      const client = await pki.client(name, { commonName: user, organization: group });
      const path = join(dir, `${name}.kubeconfig`);
      await writeKubeconfig(path, {
        server,
        caFile: pki.ca.cert,
        client,
        user,
        clusterName: `am-${layout.name}`,
      });
      return path;
    };
    const adminKubeconfig = join(layout.stateDir, 'kubeconfig');
    await writeKubeconfig(adminKubeconfig, {
      server,
      caFile: pki.ca.cert,
      client: await pki.client('admin', { commonName: 'admin', organization: 'system:masters' }),
      user: 'admin',
      clusterName: `am-${layout.name}`,
    });

    progress('etcd');
    const clientPort = await freePort();
    const peerPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${clientPort}`;
    const etcd = start('etcd', [
      binaries.etcd,
      '--name=am-etcd',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=am-etcd=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync=true',
      '--auto-compaction-retention=1',
      '--listen-metrics-urls=',
    ]);
    await waitFor('etcd /health', () => (failIfExited(etcd), httpOk(`${etcdUrl}/health`)), {
      timeoutMs: 30_000,
    });

    progress('kube-apiserver');
    const apiserver = start('kube-apiserver', [
      binaries.kubeApiserver,
      `--etcd-servers=${etcdUrl}`,
      '--etcd-prefix=/registry',
      `--bind-address=${layout.apiserverAddress}`,
      `--advertise-address=${layout.apiserverAddress}`,
      `--secure-port=${layout.apiserverPort}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--client-ca-file=${pki.ca.cert}`,
      `--service-cluster-ip-range=${serviceCidrs(layout)}`,
      '--allow-privileged=true',
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-account-issuer=https://kubernetes.default.svc.${layout.clusterDomain}`,
      `--api-audiences=https://kubernetes.default.svc.${layout.clusterDomain}`,
      `--service-account-key-file=${pki.serviceAccount.pub}`,
      `--service-account-signing-key-file=${pki.serviceAccount.key}`,
      `--kubelet-client-certificate=${kubeletClient.cert}`,
      `--kubelet-client-key=${kubeletClient.key}`,
      `--kubelet-certificate-authority=${pki.ca.cert}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--enable-priority-and-fairness=false',
      '--max-requests-inflight=0',
      '--max-mutating-requests-inflight=0',
      '--profiling=false',
      `--cert-dir=${dir}`,
    ]);
    const admin = KubeClient.fromFile(adminKubeconfig);
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        failIfExited(apiserver);
        const body = await admin.get<string>('/readyz');
        return body.trim() === 'ok' ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );

    progress('kube-controller-manager');
    const kcmConfig = await kubeconfigFor(
      'controller-manager',
      'system:kube-controller-manager',
      'system:masters',
    );
    start('kube-controller-manager', [
      binaries.kubeControllerManager,
      `--kubeconfig=${kcmConfig}`,
      `--authentication-kubeconfig=${kcmConfig}`,
      `--authorization-kubeconfig=${kcmConfig}`,
      '--secure-port=0',
      '--leader-elect=false',
      '--use-service-account-credentials=false',
      `--service-account-private-key-file=${pki.serviceAccount.key}`,
      `--root-ca-file=${pki.ca.cert}`,
      `--cluster-cidr=${clusterCidrs(layout)}`,
      `--service-cluster-ip-range=${serviceCidrs(layout)}`,
      ...(layout.ipv6 === undefined
        ? []
        : ['--node-cidr-mask-size-ipv4=24', '--node-cidr-mask-size-ipv6=64']),
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      '--concurrent-deployment-syncs=10',
      '--concurrent-replicaset-syncs=10',
    ]);

    progress('kube-scheduler');
    const schedConfig = await kubeconfigFor('scheduler', 'system:kube-scheduler');
    start('kube-scheduler', [
      binaries.kubeScheduler,
      `--kubeconfig=${schedConfig}`,
      `--authentication-kubeconfig=${schedConfig}`,
      `--authorization-kubeconfig=${schedConfig}`,
      '--secure-port=0',
      '--leader-elect=false',
    ]);

    return { pki, adminKubeconfig, client: admin, processes, kubeconfigFor, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `--service-cluster-ip-range`: the IPv4 range, then the IPv6 one in a dual-stack cluster. */
export function serviceCidrs(layout: ClusterLayout): string {
  return layout.ipv6 === undefined ? layout.serviceCidr : `${layout.serviceCidr},${layout.ipv6.serviceCidr}`;
}

/** `--cluster-cidr` (controller-manager, kube-proxy): the pod ranges of every family. */
export function clusterCidrs(layout: ClusterLayout): string {
  return layout.ipv6 === undefined ? layout.clusterCidr : `${layout.clusterCidr},${layout.ipv6.clusterCidr}`;
}
