// The gRPC echo server (image ambient-mesh/grpc-echo): `test.Echo/Unary` answers the message with
// who served it; `test.Echo/Bidi` answers each message as it comes (numbered), and ends with
// status OK and the trailer `x-rounds` once the client half-closes. Env: PORT (7070), VERSION (in
// every answer), POD_NAME, DELAY_MS (each unary call is held that long; its answer says the most
// unary calls held at once so far, `maxInFlight`).
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { ECHO_SERVICE, GRPC_ECHO_PORT, type EchoMessage } from './grpc-echo-service.ts';

const port = Number(process.env.PORT ?? String(GRPC_ECHO_PORT));
const pod = process.env.POD_NAME ?? hostname();
const version = process.env.VERSION ?? '';
const delayMs = Number(process.env.DELAY_MS ?? '0');
let inFlight = 0;
let maxInFlight = 0;

const server = new grpc.Server();
server.addService(ECHO_SERVICE, {
  unary: (
    call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>,
    callback: grpc.sendUnaryData<EchoMessage>,
  ) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const answer = (): void => {
      inFlight--;
      callback(null, { text: call.request.text, pod, version, seq: 1, maxInFlight });
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  },
  bidi: (call: grpc.ServerDuplexStream<EchoMessage, EchoMessage>) => {
    let n = 0;
    call.on('data', (m: EchoMessage) => {
      n++;
      call.write({ text: m.text, pod, version, seq: n });
    });
    call.on('end', () => {
      const trailer = new grpc.Metadata();
      trailer.set('x-rounds', String(n));
      call.end(trailer);
    });
    call.on('error', () => undefined);
  },
});
server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(`grpc-echo: cannot listen on :${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`grpc-echo ${pod} listening on :${bound}`);
});
process.on('SIGTERM', () => {
  console.log('grpc-echo: SIGTERM, closing');
  server.tryShutdown(() => process.exit(0));
});
