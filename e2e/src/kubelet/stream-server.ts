// The kubelet's streaming server: tools/kubelet-stream (Go, k8s.io/kubelet/pkg/cri/streaming),
// where its binary is cached, how it is built, and the child process each kubelet runs it as.
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { waitFor, runBuildScript } from '../exec.ts';
import { defaultCacheRoot } from '../layout.ts';
import { ManagedProcess } from '../managed-process.ts';
import { repoRoot } from './images.ts';

/** tools/kubelet-stream, the Go sources. */
export function streamServerSourceDir(): string {
  return join(repoRoot(), 'tools', 'kubelet-stream');
}

/** tools/install-deps.d/kubelet-stream.sh, which builds it into the cache. */
export function streamServerBuildScript(): string {
  return join(repoRoot(), 'tools', 'install-deps.d', 'kubelet-stream.sh');
}

/**
 * Where the build script puts the binary: keyed by the same hash of go.mod, go.sum and the
 * `.go` files (name order) that the script computes, so a changed source means a new build.
 * `KUBELET_STREAM_BIN` overrides it.
 */
export function streamServerBinary(cacheRoot = defaultCacheRoot()): string {
  const override = process.env.KUBELET_STREAM_BIN;
  if (override !== undefined && override !== '') return override;
  const src = streamServerSourceDir();
  const goFiles = readdirSync(src)
    .filter(f => f.endsWith('.go'))
    .sort();
  const hash = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', ...goFiles]) hash.update(readFileSync(join(src, f)));
  return join(cacheRoot, 'kubelet-stream', hash.digest('hex').slice(0, 16), 'kubelet-stream');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Builds the streaming server unless it is cached; resolves with the binary's path. */
export async function ensureStreamServer(
  progress: (line: string) => void = () => undefined,
): Promise<string> {
  const bin = streamServerBinary();
  if (executable(bin)) return bin;
  progress('building the kubelet streaming server (tools/kubelet-stream)');
  return runBuildScript(streamServerBuildScript(), {
    progressPrefix: 'kubelet-stream:',
    onProgress: progress,
    what: 'the kubelet streaming server',
    needs: 'Go and the Go module proxy',
  });
}

/** One kubelet's streaming server process, listening on a unix socket in the node's state dir. */
export class StreamServer {
  readonly socketPath: string;
  private readonly proc: ManagedProcess;

  private constructor(socketPath: string, proc: ManagedProcess) {
    this.socketPath = socketPath;
    this.proc = proc;
  }

  /** Starts the binary and waits for its socket; undefined (and a log line) when it is not built. */
  static async start(
    socketPath: string,
    logFile: string,
    log: (msg: string) => void,
  ): Promise<StreamServer | undefined> {
    const bin = streamServerBinary();
    if (!executable(bin)) {
      log(
        `kubelet-stream is not built (${bin}); exec, attach and port-forward are off. Run ${streamServerBuildScript()}`,
      );
      return undefined;
    }
    const proc = new ManagedProcess({ name: 'kubelet-stream', argv: [bin, '--socket', socketPath], logFile });
    await waitFor(
      'kubelet-stream socket',
      () => {
        if (!proc.running)
          throw new ClusterError(ClusterErrorCode.CommandFailed, `kubelet-stream exited; read ${logFile}`);
        return existsSync(socketPath) ? true : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, fatal: e => e instanceof ClusterError },
    );
    return new StreamServer(socketPath, proc);
  }

  async stop(): Promise<void> {
    await this.proc.stop(2_000);
  }
}
