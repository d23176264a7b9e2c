/**
 * HTTP/2 on the upstream hop, end to end on loopback: a grpc-js client (through an HBONE
 * forwarder, as ztunnel's outbound) → waypoint (h2c downstream) → HBONE → a real grpc-js
 * server; and an HTTP/2 backend for errors, resets and GOAWAY. The clusters ask for HTTP/2 as
 * istiod does: `HttpProtocolOptions` with `explicit_http_config.http2_protocol_options` (gRPC
 * ports) or `use_downstream_protocol_config` (HTTP ports).
 */
import { connect as h2connect, createServer as createH2Server, constants as h2constants } from 'node:http2';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { testConfig } from './testing/harness.ts';
import { any, assignment, edsCluster, httpListener, ms } from './testing/fixtures.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import {
  HboneForwarder,
  HboneTcpBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';

const VIP = '10.96.0.20';
const ROUTE = 'echo.80';
const GRPC = 'outbound|80||echo-grpc.default.svc.cluster.local';
const H2 = 'outbound|80||echo-h2.default.svc.cluster.local';
const PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

interface Msg {
  readonly text: string;
  readonly count?: number;
  readonly fail?: boolean;
}

const json = {
  serialize: (v: Msg): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): Msg => JSON.parse(b.toString('utf8')) as Msg,
};

/** A method of the JSON test service, `/test.Echo/<name>`. */
const jsonMethod = (
  name: string,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<Msg, Msg> => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

const ECHO_SERVICE: grpc.ServiceDefinition = {
  unary: jsonMethod('Unary', false, false),
  serverStream: jsonMethod('ServerStream', false, true),
  clientStream: jsonMethod('ClientStream', true, false),
  bidi: jsonMethod('Bidi', true, true),
  hold: jsonMethod('Hold', true, true),
};

/** One gRPC message: the 5-byte prefix (uncompressed, length) and the JSON payload. */
function frame(m: Msg): Buffer {
  const payload = json.serialize(m);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

function clusterWith(name: string, options: Record<string, unknown>) {
  return edsCluster(name, {
    typed_extension_protocol_options: { [PROTOCOL_OPTIONS]: any(EnvoyType.httpProtocolOptions, options) },
  });
}

describe('waypoint HTTP/2 upstream (gRPC and h2c backends)', () => {
  let xds: TestXdsServer;
  let grpcServer: grpc.Server;
  let grpcBackend: HboneTcpBackend;
  let h2Server: Http2Server;
  let h2Backend: HboneTcpBackend;
  const h2Sessions: ServerHttp2Session[] = [];
  const attempts = new Map<string, number>();
  /** Server-side calls by the `text` of their first message, and whether they were cancelled. */
  const serverCalls = new Map<string, { cancelled: boolean; received: string[] }>();
  let waypoint: Bound;
  let forwarder: HboneForwarder;
  let grpcClient: grpc.Client;
  let h2Client: MeshClient;
  const captured = captureLogs();

  beforeAll(async () => {
    const pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();

    grpcServer = new grpc.Server();
    grpcServer.addService(ECHO_SERVICE, {
      unary: (call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
        if (call.request.fail === true) {
          callback({ code: grpc.status.NOT_FOUND, details: `no ${call.request.text}` });
          return;
        }
        const trailer = new grpc.Metadata();
        trailer.set('x-echo-trailer', 'kept');
        callback(null, { text: `echo ${call.request.text}` }, trailer);
      },
      serverStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        const n = call.request.count ?? 1;
        for (let i = 0; i < n; i++) call.write({ text: `${call.request.text} ${i}` });
        if (call.request.fail === true)
          call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'enough' });
        else call.end();
      },
      clientStream: (call: grpc.ServerReadableStream<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
        const received: string[] = [];
        call.on('data', (m: Msg) => received.push(m.text));
        call.on('end', () => {
          const trailer = new grpc.Metadata();
          trailer.set('x-received', String(received.length));
          callback(null, { text: received.join('+') }, trailer);
        });
      },
      bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
        let n = 0;
        let record: { cancelled: boolean; received: string[] } | undefined;
        call.on('cancelled', () => {
          if (record !== undefined) record.cancelled = true;
        });
        call.on('data', (m: Msg) => {
          n++;
          if (record === undefined) {
            record = { cancelled: false, received: [] };
            serverCalls.set(m.text, record);
          }
          record.received.push(m.text);
          if (m.fail === true) {
            call.emit('error', { code: grpc.status.ABORTED, details: `stopped at ${m.text}` });
            return;
          }
          call.write({ text: `pong ${m.text}`, count: n });
        });
        call.on('end', () => {
          const trailer = new grpc.Metadata();
          trailer.set('x-rounds', String(n));
          call.end(trailer);
        });
      },
      hold: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
        // Never answers: the call ends by a deadline or a cancel.
        call.on('data', (m: Msg) => {
          const record = { cancelled: false, received: [m.text] };
          serverCalls.set(m.text, record);
          call.on('cancelled', () => {
            record.cancelled = true;
          });
        });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(err);
        else resolve(port);
      });
    });
    grpcBackend = new HboneTcpBackend(await pki.identity('default', 'echo-grpc'), grpcPort);
    await grpcBackend.start();

    h2Server = createH2Server();
    h2Server.on('session', (s: ServerHttp2Session) => h2Sessions.push(s));
    h2Server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const path = String(headers[':path']);
      if (path === '/h2/error') {
        stream.respond({ ':status': 503, 'content-type': 'text/plain', 'x-backend': 'h2' });
        stream.end('backend unavailable');
      } else if (path === '/h2/retry') {
        // Resets the first attempt of each x-test-id, answers the next.
        const id = String(headers['x-test-id']);
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        if (n === 1) stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
        else {
          stream.respond({ ':status': 200 });
          stream.end(`attempt ${n}`);
        }
      } else if (path === '/test.Raw/Burst') {
        // Headers, message and trailers written in one go: they reach the waypoint in one read.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => {
          stream.sendTrailers({ 'grpc-status': '0', 'x-burst': 'yes' });
        });
        stream.end(frame({ text: 'burst' }));
      } else if (path === '/test.Raw/Cancel') {
        // A gRPC server that sends one message and then resets the stream with CANCEL (where its
        // trailers would go, so no END_STREAM precedes the RST_STREAM).
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => {
          setTimeout(() => {
            stream.close(h2constants.NGHTTP2_CANCEL);
          }, 50);
        });
        stream.end(frame({ text: 'first' }));
      } else if (path === '/h2/reset') {
        stream.close(h2constants.NGHTTP2_INTERNAL_ERROR);
      } else if (path === '/h2/goaway') {
        // GOAWAY while this stream is open: it completes, later requests use a new connection.
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.write('first;');
        stream.session?.goaway(h2constants.NGHTTP2_NO_ERROR, stream.id);
        setImmediate(() => stream.end('second'));
      } else {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(`h2 ${path} ${String(headers.te ?? '')}`);
      }
    });
    await new Promise<void>(resolve => h2Server.listen(0, '127.0.0.1', resolve));
    h2Backend = new HboneTcpBackend(
      await pki.identity('default', 'echo-h2'),
      (h2Server.address() as AddressInfo).port,
    );
    await h2Backend.start();

    const waypointIdentity = await pki.identity('default', 'waypoint');
    xds.set(
      TypeUrl.cluster,
      GRPC,
      clusterWith(GRPC, { explicit_http_config: { http2_protocol_options: {} } }),
    );
    xds.set(TypeUrl.cluster, H2, clusterWith(H2, { use_downstream_protocol_config: {} }));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      GRPC,
      assignment(GRPC, [
        {
          address: '10.1.0.21',
          port: 9090,
          hbone: `127.0.0.1:${grpcBackend.port}`,
          identity: grpcBackend.identity.id,
          workload: 'echo-grpc;default;echo-grpc;v1;Kubernetes',
        },
      ]),
    );
    xds.set(
      TypeUrl.clusterLoadAssignment,
      H2,
      assignment(H2, [
        {
          address: '10.1.0.22',
          port: 8080,
          hbone: `127.0.0.1:${h2Backend.port}`,
          identity: h2Backend.identity.id,
          workload: 'echo-h2;default;echo-h2;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.listener, 'main_internal', httpListener('main_internal', VIP, 80, ROUTE));
    xds.set(TypeUrl.routeConfiguration, ROUTE, {
      name: ROUTE,
      virtual_hosts: [
        {
          name: 'echo',
          domains: ['*'],
          routes: [
            // As istiod writes a route without a timeout: the client's grpc-timeout applies.
            {
              name: 'grpc-hold-capped',
              match: { path: '/test.Echo/Hold', headers: [{ name: 'x-cap', present_match: true }] },
              route: { cluster: GRPC, timeout: ms(300), max_grpc_timeout: ms(300) },
            },
            {
              name: 'grpc',
              match: { prefix: '/test.Echo/' },
              route: { cluster: GRPC, timeout: ms(0), max_grpc_timeout: ms(0) },
            },
            { name: 'grpc-raw', match: { prefix: '/test.Raw/' }, route: { cluster: H2, timeout: ms(0) } },
            {
              name: 'h2-retry',
              match: { path: '/h2/retry' },
              route: {
                cluster: H2,
                timeout: ms(0),
                retry_policy: {
                  retry_on: 'reset',
                  num_retries: { value: 2 },
                  retry_back_off: { base_interval: ms(1) },
                },
              },
            },
            { name: 'h2', match: { prefix: '/h2/' }, route: { cluster: H2, timeout: ms(0) } },
          ],
        },
      ],
    });
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready);
    const clientOptions = {
      identity: await pki.identity('default', 'frontend'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:80`,
      baggage:
        'k8s.namespace.name=default,k8s.deployment.name=frontend,service.name=frontend,service.version=v1,k8s.cluster.name=Kubernetes',
    };
    forwarder = new HboneForwarder(clientOptions);
    await forwarder.start();
    grpcClient = new grpc.Client(`127.0.0.1:${forwarder.port}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': 'echo.default.svc.cluster.local',
    });
    h2Client = new MeshClient({ ...clientOptions, h2: true });
  }, 60_000);

  afterAll(async () => {
    if (process.env.WAYPOINT_TEST_LOGS === '1')
      for (const r of captured.records) console.log(JSON.stringify(r));
    grpcClient.close();
    await h2Client.close();
    await forwarder.close();
    await waypoint.shutdown();
    await grpcBackend.close();
    await h2Backend.close();
    grpcServer.forceShutdown();
    for (const s of h2Sessions) s.destroy();
    await new Promise<void>(resolve =>
      h2Server.close(() => {
        resolve();
      }),
    );
    xds.close();
  });

  function unary(
    request: Msg,
  ): Promise<{ error: grpc.ServiceError | null; response: Msg | undefined; status: grpc.StatusObject }> {
    return new Promise((resolve, reject) => {
      let result: { error: grpc.ServiceError | null; response: Msg | undefined } | undefined;
      let status: grpc.StatusObject | undefined;
      const settle = (): void => {
        if (result !== undefined && status !== undefined) resolve({ ...result, status });
      };
      const call = grpcClient.makeUnaryRequest(
        ECHO_SERVICE.unary!.path,
        json.serialize,
        json.deserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + 20_000 },
        (error, response) => {
          result = { error, response };
          settle();
        },
      );
      call.on('status', (s: grpc.StatusObject) => {
        status = s;
        settle();
      });
      call.on('error', () => undefined);
      setTimeout(() => {
        reject(new Error('unary call did not settle'));
      }, 25_000).unref();
    });
  }

  it('proxies a gRPC unary call to an h2c backend, trailers included', async () => {
    const { error, response, status } = await unary({ text: 'hello' });
    expect(error).toBeNull();
    expect(response).toEqual({ text: 'echo hello' });
    expect(status.code).toBe(grpc.status.OK);
    expect(status.metadata.get('x-echo-trailer')).toEqual(['kept']);
    expect(grpcBackend.tunnels).toBeGreaterThanOrEqual(1);
  });

  it('passes a gRPC error status from the backend through', async () => {
    const { error, status } = await unary({ text: 'thing', fail: true });
    expect(error?.code).toBe(grpc.status.NOT_FOUND);
    expect(status.code).toBe(grpc.status.NOT_FOUND);
    expect(status.details).toBe('no thing');
  });

  it('proxies a gRPC server-streaming call, ending with the backend status', async () => {
    const run = (request: Msg) =>
      new Promise<{ messages: string[]; status: grpc.StatusObject }>((resolve, reject) => {
        const messages: string[] = [];
        const call = grpcClient.makeServerStreamRequest(
          ECHO_SERVICE.serverStream!.path,
          json.serialize,
          json.deserialize,
          request,
          new grpc.Metadata(),
          { deadline: Date.now() + 20_000 },
        );
        call.on('data', (m: Msg) => messages.push(m.text));
        call.on('error', () => undefined);
        call.on('status', (status: grpc.StatusObject) => {
          resolve({ messages, status });
        });
        setTimeout(() => {
          reject(new Error('stream did not settle'));
        }, 25_000).unref();
      });
    const ok = await run({ text: 'tick', count: 5 });
    expect(ok.messages).toEqual(['tick 0', 'tick 1', 'tick 2', 'tick 3', 'tick 4']);
    expect(ok.status.code).toBe(grpc.status.OK);
    const failed = await run({ text: 'tock', count: 2, fail: true });
    expect(failed.messages).toEqual(['tock 0', 'tock 1']);
    expect(failed.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(failed.status.details).toBe('enough');
  });

  /** Waits until the backend has seen the call whose first message is `text` cancelled. */
  function backendCancelled(text: string): Promise<void> {
    return waitFor('the backend call cancelled', () => serverCalls.get(text)?.cancelled === true, 20_000);
  }

  /** The sum of a waypoint counter over the echo-grpc series with `grpc_response_status`. */
  async function grpcCounter(name: string, grpcStatus: string, flags = '-'): Promise<number> {
    const text = await scrapeStats(waypoint);
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      if (!line.includes('destination_service="echo-grpc.default.svc.cluster.local"')) continue;
      if (!line.includes(`grpc_response_status="${grpcStatus}"`)) continue;
      if (!line.includes(`response_flags="${flags}"`)) continue;
      if (!line.includes('reporter="waypoint"')) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  /** Waits until `istio_requests_total` counts a call with this gRPC status and these response flags. */
  function requestCounted(what: string, grpcStatus: string, flags: string): Promise<void> {
    return waitFor(
      what,
      async () => (await grpcCounter('istio_requests_total', grpcStatus, flags)) >= 1,
      20_000,
    );
  }

  async function messageCounts(): Promise<{ requests: number; request: number; response: number }> {
    return {
      requests: await grpcCounter('istio_requests_total', '0'),
      request: await grpcCounter('istio_request_messages_total', '0'),
      response: await grpcCounter('istio_response_messages_total', '0'),
    };
  }

  /** Waits until one more OK gRPC call was recorded and returns the message counts it added. */
  async function countedCall(run: () => Promise<unknown>): Promise<{ request: number; response: number }> {
    const before = await messageCounts();
    await run();
    let after = before;
    await waitFor(
      'the call in the waypoint metrics',
      async () => {
        after = await messageCounts();
        return after.requests === before.requests + 1;
      },
      20_000,
    );
    return { request: after.request - before.request, response: after.response - before.response };
  }

  function bidiCall(metadata = new grpc.Metadata()): grpc.ClientDuplexStream<Msg, Msg> {
    return grpcClient.makeBidiStreamRequest(
      ECHO_SERVICE.bidi!.path,
      json.serialize,
      json.deserialize,
      metadata,
      { deadline: Date.now() + 20_000 },
    );
  }

  /** Resolves with the call's status; rejects when it does not end in time. */
  function statusOf(call: {
    on(event: 'status', l: (s: grpc.StatusObject) => void): unknown;
  }): Promise<grpc.StatusObject> {
    return new Promise((resolve, reject) => {
      call.on('status', resolve);
      setTimeout(() => {
        reject(new Error('call did not settle'));
      }, 25_000).unref();
    });
  }

  /** The status of a unary call of `path` with a `{ text: 'x' }` request, its response ignored. */
  function unaryStatus(path: string): Promise<grpc.StatusObject> {
    return statusOf(
      grpcClient.makeUnaryRequest(
        path,
        json.serialize,
        json.deserialize,
        { text: 'x' },
        new grpc.Metadata(),
        { deadline: Date.now() + 20_000 },
        () => undefined,
      ),
    );
  }

  /**
   * A bidirectional call that has sent `text` and got its reply (`pong <text>`) back, with the
   * promise of its final status; its client-side error event is ignored.
   */
  async function bidiAfterFirstReply(
    text: string,
  ): Promise<{ call: grpc.ClientDuplexStream<Msg, Msg>; settled: Promise<grpc.StatusObject> }> {
    const call = bidiCall();
    const settled = statusOf(call);
    call.on('error', () => undefined);
    const reply = nextMessage(call);
    call.write({ text });
    expect(await reply).toEqual({ text: `pong ${text}`, count: 1 });
    return { call, settled };
  }

  /** The next message of a streaming call. */
  function nextMessage(call: grpc.ClientDuplexStream<Msg, Msg>): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const onData = (m: Msg): void => {
        call.off('error', onError);
        resolve(m);
      };
      const onError = (err: Error): void => {
        call.off('data', onData);
        reject(err);
      };
      call.once('data', onData);
      call.once('error', onError);
    });
  }

  it('proxies a gRPC client-streaming call: messages, half-close, response and trailers', async () => {
    let result:
      { error: grpc.ServiceError | null; response: Msg | undefined; status: grpc.StatusObject } | undefined;
    const counted = await countedCall(async () => {
      let done: ((v: { error: grpc.ServiceError | null; response: Msg | undefined }) => void) | undefined;
      const finished = new Promise<{ error: grpc.ServiceError | null; response: Msg | undefined }>(
        resolve => {
          done = resolve;
        },
      );
      const call = grpcClient.makeClientStreamRequest(
        ECHO_SERVICE.clientStream!.path,
        json.serialize,
        json.deserialize,
        new grpc.Metadata(),
        { deadline: Date.now() + 20_000 },
        (error, response) => {
          done!({ error, response });
        },
      );
      const status = statusOf(call);
      for (const text of ['a', 'b', 'c', 'd']) call.write({ text });
      call.end();
      result = { ...(await finished), status: await status };
    });
    expect(result?.error).toBeNull();
    expect(result?.response).toEqual({ text: 'a+b+c+d' });
    expect(result?.status.code).toBe(grpc.status.OK);
    expect(result?.status.metadata.get('x-received')).toEqual(['4']);
    // Four request messages, one response message, counted as the stats filter counts them.
    expect(counted).toEqual({ request: 4, response: 1 });
  });

  it('proxies a bidirectional call turn by turn (each reply before the next message), then the half-close and trailers', async () => {
    let status: grpc.StatusObject | undefined;
    const replies: Msg[] = [];
    const counted = await countedCall(async () => {
      const call = bidiCall();
      const settled = statusOf(call);
      // Ping-pong: the next message is only sent once the previous reply came back through the
      // waypoint, so the request body is streamed upstream while the response is open.
      for (const text of ['bidi-1', 'bidi-2', 'bidi-3']) {
        const reply = nextMessage(call);
        call.write({ text });
        replies.push(await reply);
      }
      call.end();
      call.on('data', () => undefined);
      status = await settled;
    });
    expect(replies).toEqual([
      { text: 'pong bidi-1', count: 1 },
      { text: 'pong bidi-2', count: 2 },
      { text: 'pong bidi-3', count: 3 },
    ]);
    expect(status?.code).toBe(grpc.status.OK);
    expect(status?.metadata.get('x-rounds')).toEqual(['3']);
    expect(serverCalls.get('bidi-1')?.received).toEqual(['bidi-1', 'bidi-2', 'bidi-3']);
    expect(counted).toEqual({ request: 3, response: 3 });
  });

  it('relays a bidirectional call ended by the server with an error status and message', async () => {
    const { call, settled } = await bidiAfterFirstReply('err-1');
    call.write({ text: 'err-2', fail: true });
    const status = await settled;
    expect(status.code).toBe(grpc.status.ABORTED);
    expect(status.details).toBe('stopped at err-2');
  });

  it('propagates a client cancel upstream: the backend call is cancelled', async () => {
    const { call, settled } = await bidiAfterFirstReply('cancel-1');
    call.cancel();
    expect((await settled).code).toBe(grpc.status.CANCELLED);
    await backendCancelled('cancel-1');
    // The waypoint records the request as ended by the client (Envoy's DC).
    await requestCounted('the cancelled call in the metrics', '', 'DC');
  });

  it('relays trailers that arrive in the same read as the response headers', async () => {
    for (let i = 0; i < 5; i++) {
      const status = await unaryStatus('/test.Raw/Burst');
      expect(status.code).toBe(grpc.status.OK);
      expect(status.metadata.get('x-burst')).toEqual(['yes']);
    }
  });

  it('propagates an upstream RST_STREAM to the client with its code (CANCEL: CANCELLED)', async () => {
    const messages: string[] = [];
    const call = grpcClient.makeServerStreamRequest(
      '/test.Raw/Cancel',
      json.serialize,
      json.deserialize,
      { text: 'x' },
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
    );
    call.on('data', (m: Msg) => messages.push(m.text));
    call.on('error', () => undefined);
    const status = await statusOf(call);
    expect(messages).toEqual(['first']);
    expect(status.code).toBe(grpc.status.CANCELLED);
  });

  it("honours the client's grpc-timeout as the route timeout (max_grpc_timeout 0): 504 as gRPC UNAVAILABLE, backend cancelled", async () => {
    // A raw HTTP/2 client, so the deadline is the waypoint's alone (a gRPC client would race it).
    const session = h2connect(`http://127.0.0.1:${forwarder.port}`);
    session.on('error', () => undefined);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': ECHO_SERVICE.hold!.path,
        ':authority': 'echo.default.svc.cluster.local',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '300m',
      });
      stream.on('error', () => undefined);
      const headers = new Promise<Record<string, unknown>>((resolve, reject) => {
        stream.once('response', h => {
          resolve(h);
        });
        stream.once('close', () => {
          reject(new Error(`stream closed (code ${stream.rstCode})`));
        });
      });
      stream.write(frame({ text: 'deadline-1' }));
      const h = await headers;
      expect(h[':status']).toBe(200);
      expect(h['grpc-status']).toBe('14');
      expect(decodeURIComponent(String(h['grpc-message']))).toBe('upstream request timeout');
      stream.close();
    } finally {
      session.close();
    }
    await backendCancelled('deadline-1');
    await requestCounted('the timed-out call in the metrics', '14', 'UT');
  });

  it('caps a longer client deadline at the route maximum (max_grpc_timeout 300 ms)', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-cap', '1');
    const call = grpcClient.makeBidiStreamRequest(
      ECHO_SERVICE.hold!.path,
      json.serialize,
      json.deserialize,
      metadata,
      { deadline: Date.now() + 20_000 },
    );
    call.on('error', () => undefined);
    const settled = statusOf(call);
    call.write({ text: 'capped-1' });
    const status = await settled;
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    expect(status.details).toBe('upstream request timeout');
    await backendCancelled('capped-1');
  });

  it('counts server-streaming messages: one request message, one per response message', async () => {
    const counted = await countedCall(
      () =>
        new Promise<void>((resolve, reject) => {
          const call = grpcClient.makeServerStreamRequest(
            ECHO_SERVICE.serverStream!.path,
            json.serialize,
            json.deserialize,
            { text: 'count', count: 6 },
            new grpc.Metadata(),
            { deadline: Date.now() + 20_000 },
          );
          call.on('data', () => undefined);
          call.on('error', reject);
          call.on('status', () => {
            resolve();
          });
        }),
    );
    expect(counted).toEqual({ request: 1, response: 6 });
  });

  it("answers a gRPC request's local reply as gRPC (no route: UNIMPLEMENTED)", async () => {
    const status = await unaryStatus('/test.Other/Missing');
    expect(status.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('records grpc_response_status in istio_requests_total', async () => {
    await waitFor(
      'gRPC metrics',
      async () => {
        const text = await scrapeStats(waypoint);
        const lines = text.split('\n').filter(l => l.startsWith('istio_requests_total{'));
        const has = (grpcStatus: string) =>
          lines.some(
            l =>
              l.includes('destination_service="echo-grpc.default.svc.cluster.local"') &&
              l.includes('reporter="waypoint"') &&
              l.includes('request_protocol="grpc"') &&
              l.includes('response_code="200"') &&
              l.includes(`grpc_response_status="${grpcStatus}"`),
          );
        const localReply = lines.some(
          l =>
            l.includes('response_flags="NR"') &&
            l.includes('response_code="200"') &&
            l.includes('grpc_response_status="12"'),
        );
        return has('0') && has('5') && has('8') && localReply;
      },
      20_000,
    );
  });

  it('forwards an HTTP/2 request as HTTP/2 when the cluster uses the downstream protocol', async () => {
    const res = await h2Client.get('/h2/hello', { te: 'trailers' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('h2 /h2/hello trailers');
  });

  it('passes an h2 backend error response through', async () => {
    const res = await h2Client.get('/h2/error');
    expect(res.status).toBe(503);
    expect(res.text).toBe('backend unavailable');
    expect(res.headers['x-backend']).toBe('h2');
  });

  it('answers 503 when the h2 backend resets the stream before the response', async () => {
    const res = await h2Client.get('/h2/reset');
    expect(res.status).toBe(503);
    expect(res.text).toContain('reset reason');
  });

  it('retries a stream the h2 backend reset when the route retries on reset', async () => {
    const res = await h2Client.get('/h2/retry', { 'x-test-id': 'r1' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('attempt 2');
    expect(attempts.get('r1')).toBe(2);
  });

  it('finishes the open stream on a backend GOAWAY and opens a new connection after it', async () => {
    const before = h2Sessions.length;
    const res = await h2Client.get('/h2/goaway');
    expect(res.status).toBe(200);
    expect(res.text).toBe('first;second');
    const next = await h2Client.get('/h2/after');
    expect(next.status).toBe(200);
    expect(next.text).toBe('h2 /h2/after ');
    expect(h2Sessions.length).toBe(before + 1);
  });
});
