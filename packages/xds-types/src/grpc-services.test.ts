import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  AggregatedDiscoveryService,
  IstioCertificateService,
  TypeUrl,
  packAny,
  toStruct,
  unpackAny,
  workload,
} from './index.ts';
import type { ca, discovery } from './index.ts';

async function startServer(configure: (server: grpc.Server) => void): Promise<string> {
  const server = new grpc.Server();
  onTestFinished(() => {
    server.forceShutdown();
  });
  configure(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(err);
      else resolve(bound);
    });
  });
  return `127.0.0.1:${port}`;
}

function connect(address: string): grpc.Client {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  onTestFinished(() => {
    client.close();
  });
  return client;
}

describe('gRPC service definitions with a real grpc-js server and client on loopback', () => {
  it('has the Istio wire paths and stream flags', () => {
    const ads = AggregatedDiscoveryService.DeltaAggregatedResources;
    expect(ads.path).toBe('/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources');
    expect([ads.requestStream, ads.responseStream]).toEqual([true, true]);
    const csr = IstioCertificateService.CreateCertificate;
    expect(csr.path).toBe('/istio.v1.auth.IstioCertificateService/CreateCertificate');
    expect([csr.requestStream, csr.responseStream]).toEqual([false, false]);
    // Accepted where grpc-js wants a ServiceDefinition.
    const Ctor = grpc.makeGenericClientConstructor(IstioCertificateService, 'IstioCertificateService');
    expect(typeof Ctor.prototype).toBe('object');
  });

  it('runs a delta ADS exchange: request with node, response with an Address resource', async () => {
    const seen: discovery.DeltaDiscoveryRequest[] = [];
    const address = await startServer(server => {
      server.addService(AggregatedDiscoveryService, {
        DeltaAggregatedResources: (
          call: grpc.ServerDuplexStream<
            discovery.DeltaDiscoveryRequest,
            discovery.DeltaDiscoveryResponseInit
          >,
        ) => {
          call.on('data', (request: discovery.DeltaDiscoveryRequest) => {
            seen.push(request);
            call.write({
              typeUrl: request.typeUrl,
              nonce: 'nonce-1',
              resources: [
                {
                  name: 'Kubernetes//Pod/default/pod-a',
                  version: 'v1',
                  resource: packAny(TypeUrl.ADDRESS, {
                    workload: {
                      uid: 'Kubernetes//Pod/default/pod-a',
                      name: 'pod-a',
                      tunnelProtocol: workload.TunnelProtocol.HBONE,
                    },
                  }),
                },
              ],
            });
          });
          call.on('end', () => {
            call.end();
          });
        },
      });
    });
    const client = connect(address);
    const def = AggregatedDiscoveryService.DeltaAggregatedResources;
    const stream = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize);
    const first = new Promise<discovery.DeltaDiscoveryResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    stream.write({
      node: {
        id: 'ztunnel~10.0.0.7~ztunnel-abc.istio-system~istio-system.svc.cluster.local',
        metadata: toStruct({ NAME: 'ztunnel-abc' }),
      },
      typeUrl: TypeUrl.ADDRESS,
    });
    const response = await first;
    stream.end();

    expect(seen[0]?.typeUrl).toBe(TypeUrl.ADDRESS);
    expect(seen[0]?.node?.id).toBe(
      'ztunnel~10.0.0.7~ztunnel-abc.istio-system~istio-system.svc.cluster.local',
    );
    expect(response.nonce).toBe('nonce-1');
    const resource = unpackAny(response.resources[0]?.resource, TypeUrl.ADDRESS);
    expect(resource.workload?.name).toBe('pod-a');
    expect(resource.workload?.tunnelProtocol).toBe(workload.TunnelProtocol.HBONE);
  });

  it('runs a unary CreateCertificate call with Struct metadata', async () => {
    const address = await startServer(server => {
      server.addService(IstioCertificateService, {
        CreateCertificate: (
          call: grpc.ServerUnaryCall<ca.IstioCertificateRequest, ca.IstioCertificateResponseInit>,
          callback: grpc.sendUnaryData<ca.IstioCertificateResponseInit>,
        ) => {
          const identity = call.request.metadata?.fields['ImpersonatedIdentity']?.stringValue ?? '';
          callback(null, { certChain: [`leaf for ${identity}\n`, `ttl ${call.request.validityDuration}`] });
        },
      });
    });
    const client = connect(address);
    const def = IstioCertificateService.CreateCertificate;
    const response = await new Promise<ca.IstioCertificateResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        {
          csr: '-----BEGIN CERTIFICATE REQUEST-----',
          validityDuration: 86_400n,
          metadata: toStruct({ ImpersonatedIdentity: 'spiffe://cluster.local/ns/default/sa/sa-a' }),
        },
        (err, value) => {
          if (err) reject(err);
          else if (value) resolve(value);
          else reject(new Error('no response'));
        },
      );
    });
    expect(response.certChain).toEqual(['leaf for spiffe://cluster.local/ns/default/sa/sa-a\n', 'ttl 86400']);
  });
});
