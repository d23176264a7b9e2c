/**
 * A real Jaeger v2 (built by tools/install-deps.d/jaeger.sh from the Go module proxy) on loopback
 * ephemeral ports: an OTLP receiver (gRPC and HTTP) into in-memory storage, and the query API the
 * console reads (`/api/traces`). A missing binary is an error telling to run the setup, never a skip.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const JAEGER_VERSION = 'v1.75.0';

/** The binary's path; throws with the command to run when it has not been built. */
export function jaegerBinary(): string {
  const fromEnv = process.env.JAEGER_BIN;
  const cache = process.env.AMBIENT_MESH_CACHE ?? join(homedir(), '.cache', 'ambient-mesh');
  const bin =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv
      : join(cache, 'jaeger', JAEGER_VERSION, 'bin', 'jaeger');
  if (!existsSync(bin))
    throw new Error(
      `Jaeger ${JAEGER_VERSION} is not built (${bin} is missing): run \`npm run setup\` ` +
        '(or `bash tools/install-deps.d/jaeger.sh`), or set JAEGER_BIN',
    );
  return bin;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>(resolve =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

/** A span as Jaeger's query API answers it. */
export interface JaegerApiSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly references?: readonly {
    readonly refType: string;
    readonly traceID: string;
    readonly spanID: string;
  }[];
  readonly tags: readonly { readonly key: string; readonly value: unknown }[];
  readonly processID: string;
}

export interface JaegerApiTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerApiSpan[];
  readonly processes: Readonly<Record<string, { readonly serviceName: string }>>;
}

export class Jaeger {
  readonly otlpGrpcPort: number;
  readonly otlpHttpPort: number;
  readonly queryPort: number;
  readonly #child: ChildProcess;
  readonly #dir: string;
  #output = '';

  private constructor(child: ChildProcess, dir: string, ports: readonly number[]) {
    this.#child = child;
    this.#dir = dir;
    [this.otlpGrpcPort, this.otlpHttpPort, this.queryPort] = ports as [number, number, number];
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Starts Jaeger and waits (bounded) until its query API answers. */
  static async start(): Promise<Jaeger> {
    const bin = jaegerBinary();
    const dir = await mkdtemp(join(tmpdir(), 'jaeger-'));
    const [grpc, http, query, queryGrpc] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const config = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${query}
    grpc:
      endpoint: 127.0.0.1:${queryGrpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${grpc}
      http:
        endpoint: 127.0.0.1:${http}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
    const file = join(dir, 'config.yaml');
    await writeFile(file, config);
    const child = spawn(bin, ['--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const jaeger = new Jaeger(child, dir, [grpc, http, query]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`Jaeger exited with ${child.exitCode} while starting:\n${jaeger.#output}`);
      try {
        const r = await fetch(`http://127.0.0.1:${query}/api/services`, {
          signal: AbortSignal.timeout(2000),
        });
        if (r.ok) return jaeger;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await jaeger.stop();
        throw new Error(`Jaeger's query API did not answer within 60 s:\n${jaeger.#output}`);
      }
      await new Promise(resolve => setTimeout(resolve, 100));
    }
  }

  /** `GET /api/traces?service=` (what the console reads). */
  async traces(service: string): Promise<readonly JaegerApiTrace[]> {
    const params = new URLSearchParams({ service, lookback: '1h', limit: '100' });
    const r = await fetch(`http://127.0.0.1:${this.queryPort}/api/traces?${params.toString()}`, {
      signal: AbortSignal.timeout(5000),
    });
    if (!r.ok) return [];
    const body = (await r.json()) as { data?: JaegerApiTrace[] | null };
    return body.data ?? [];
  }

  /** `GET /api/traces/<id>`. */
  async trace(traceId: string): Promise<JaegerApiTrace | undefined> {
    const r = await fetch(`http://127.0.0.1:${this.queryPort}/api/traces/${traceId}`, {
      signal: AbortSignal.timeout(5000),
    });
    if (!r.ok) return undefined;
    const body = (await r.json()) as { data?: JaegerApiTrace[] | null };
    return body.data?.[0];
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise<void>(resolve =>
        this.#child.once('exit', () => {
          resolve();
        }),
      );
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}
