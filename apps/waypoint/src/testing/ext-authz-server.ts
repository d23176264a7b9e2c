/**
 * Istio's sample ext-authz server (`istio.io/istio/samples/extauthz/cmd/extauthz`), built from the
 * Go module proxy by tools/install-deps.d/istio-upstream.sh into the shared cache
 * (`<cache>/istio/<label>/bin/extauthz`), run as a real process on ephemeral ports. It allows a
 * request carrying `x-ext-authz: allow` and denies the others (403 and a body), over HTTP and
 * gRPC (`envoy.service.auth.v3.Authorization/Check`).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const SETUP_HINT =
  "Istio's sample ext-authz server is missing: run `npm run setup` " +
  '(or `bash tools/install-deps.d/istio-upstream.sh`), which builds it into the tool cache';

/** The binary's path; throws (the test fails) with the setup hint when it is not built. */
export function extAuthzBinary(): string {
  const root = join(process.env.AMBIENT_MESH_CACHE ?? join(homedir(), '.cache', 'ambient-mesh'), 'istio');
  if (existsSync(root)) {
    for (const label of readdirSync(root).sort().reverse()) {
      const bin = join(root, label, 'bin', 'extauthz');
      if (existsSync(bin)) return bin;
    }
  }
  throw new Error(`${SETUP_HINT} (looked in ${root}/<label>/bin/extauthz)`);
}

export class ExtAuthzSample {
  readonly #child: ChildProcess;
  httpPort = 0;
  grpcPort = 0;
  log = '';

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /** Starts the server on ephemeral ports and resolves once both listen (bounded). */
  static async start(timeoutMs = 30_000): Promise<ExtAuthzSample> {
    const child = spawn(extAuthzBinary(), ['-http', '0', '-grpc', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ExtAuthzSample(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the ext-authz sample did not start within ${timeoutMs} ms: ${server.log}`));
      }, timeoutMs);
      const onData = (chunk: Buffer): void => {
        server.log += chunk.toString();
        const http = /Starting HTTP server at .*:(\d+)/.exec(server.log);
        const grpc = /Starting gRPC server at .*:(\d+)/.exec(server.log);
        if (http !== null && grpc !== null) {
          server.httpPort = Number(http[1]);
          server.grpcPort = Number(grpc[1]);
          clearTimeout(timer);
          resolve();
        }
      };
      child.stderr.on('data', onData);
      child.stdout.on('data', onData);
      child.once('exit', code => {
        clearTimeout(timer);
        reject(new Error(`the ext-authz sample exited (${String(code)}): ${server.log}`));
      });
      child.once('error', err => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return server;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>(resolve =>
      this.#child.once('exit', () => {
        resolve();
      }),
    );
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
