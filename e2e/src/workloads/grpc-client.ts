// A gRPC client for the cluster scenarios, run inside a pod's netns (`ip netns exec`), so its
// calls are the pod's own traffic. Prints one JSON line.
//
//   grpc-client.ts <address:port> <authority> unary <calls> [header=value ...]
//     -> {"codes":{"0":n,...},"versions":{"v1":n,...},"errors":[...]}   (calls one after the
//        other; `errors`: the first few failures' status and message)
//   grpc-client.ts <address:port> <authority> bidi <rounds> [header=value ...]
//     -> {"code":0,"details":"","replies":[...],"trailers":{...}}
//   (one call: each message is sent once the previous reply came back, then the half-close)
//   grpc-client.ts <address:port> <authority> burst <calls> [header=value ...]
//     -> {"codes":{"0":n,"14":m},"maxInFlight":k,"errors":[...]}   (all calls at once on one
//        connection; `maxInFlight`: the most the server says it held at once)
import * as grpc from '@grpc/grpc-js';
import { ECHO_SERVICE, type EchoMessage } from './grpc-echo-service.ts';

const [address, authority, mode, countText, ...headerArgs] = process.argv.slice(2);
if (
  address === undefined ||
  authority === undefined ||
  (mode !== 'unary' && mode !== 'bidi' && mode !== 'burst')
) {
  console.error(
    'usage: grpc-client.ts <address:port> <authority> unary|bidi|burst <count> [header=value ...]',
  );
  process.exit(2);
}
const count = Number(countText ?? '1');
const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
  'grpc.default_authority': authority,
});
const metadata = (): grpc.Metadata => {
  const m = new grpc.Metadata();
  for (const h of headerArgs) {
    const i = h.indexOf('=');
    m.set(h.slice(0, i), h.slice(i + 1));
  }
  return m;
};
const deadline = (): number => Date.now() + 10_000;
const OK: number = grpc.status.OK;

function unary(text: string): Promise<{
  code: number;
  version: string | undefined;
  details: string | undefined;
  maxInFlight: number | undefined;
}> {
  return new Promise(resolve => {
    client.makeUnaryRequest(
      ECHO_SERVICE.unary.path,
      ECHO_SERVICE.unary.requestSerialize,
      ECHO_SERVICE.unary.responseDeserialize,
      { text },
      metadata(),
      { deadline: deadline() },
      (err, res) => {
        resolve({
          code: err?.code ?? OK,
          version: res?.version,
          details: err?.details,
          maxInFlight: res?.maxInFlight,
        });
      },
    );
  });
}

async function bidi(rounds: number): Promise<object> {
  const call = client.makeBidiStreamRequest(
    ECHO_SERVICE.bidi.path,
    ECHO_SERVICE.bidi.requestSerialize,
    ECHO_SERVICE.bidi.responseDeserialize,
    metadata(),
    { deadline: deadline() },
  );
  const status = new Promise<grpc.StatusObject>(resolve => call.on('status', resolve));
  call.on('error', () => undefined);
  const replies: EchoMessage[] = [];
  const queue: EchoMessage[] = [];
  let wake: (() => void) | undefined;
  call.on('data', (m: EchoMessage) => {
    queue.push(m);
    wake?.();
  });
  for (let i = 1; i <= rounds; i++) {
    call.write({ text: `round ${i}` });
    // The next message goes only once this one's reply came back (or the call ended).
    const next = await Promise.race([
      new Promise<EchoMessage | undefined>(resolve => {
        const take = (): void => {
          if (queue.length > 0) resolve(queue.shift());
          else wake = take;
        };
        take();
      }),
      status.then(() => undefined),
    ]);
    wake = undefined;
    if (next === undefined) break;
    replies.push(next);
  }
  call.end();
  const s = await status;
  return { code: s.code, details: s.details, replies, trailers: s.metadata.getMap() };
}

if (mode === 'unary') {
  const codes: Record<string, number> = {};
  const versions: Record<string, number> = {};
  const errors: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await unary(`call ${i}`);
    codes[r.code] = (codes[r.code] ?? 0) + 1;
    if (r.version !== undefined) versions[r.version] = (versions[r.version] ?? 0) + 1;
    if (r.code !== OK && errors.length < 5) errors.push(`${r.code} ${r.details ?? ''}`);
  }
  console.log(JSON.stringify({ codes, versions, errors }));
} else if (mode === 'burst') {
  const results = await Promise.all(Array.from({ length: count }, (_, i) => unary(`burst ${i}`)));
  const codes: Record<string, number> = {};
  const errors: string[] = [];
  let maxInFlight = 0;
  for (const r of results) {
    codes[r.code] = (codes[r.code] ?? 0) + 1;
    maxInFlight = Math.max(maxInFlight, r.maxInFlight ?? 0);
    if (r.code !== OK && errors.length < 5) errors.push(`${r.code} ${r.details ?? ''}`);
  }
  console.log(JSON.stringify({ codes, maxInFlight, errors }));
} else {
  console.log(JSON.stringify(await bidi(count)));
}
client.close();
