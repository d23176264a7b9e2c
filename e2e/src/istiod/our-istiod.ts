/**
 * Runs Ambient Mesh's istiod in the test process against a real cluster (its admin kubeconfig),
 * every listener on 127.0.0.1 with a free port, and a CA client for `CreateCertificate`.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  createLogger,
  kubeDependencies,
  loadConfig,
  loadKubeConfig,
  startIstiod,
  type RunningIstiod,
} from '@ambient-mesh/istiod';
import { createWorkloadCsr, SpiffeId } from '@ambient-mesh/spiffe-certs';
import { IstioCertificateService, toStruct, type ca } from '@ambient-mesh/xds-types';
import { createSecureContext } from 'node:tls';

export interface OurIstiod {
  readonly istiod: RunningIstiod;
  /** `127.0.0.1:<port>` of the xDS + CA listener; dial with server name `istiod.istio-system.svc`. */
  readonly xdsAddress: string;
  /** The mesh roots (PEM) the serving certificate chains to. */
  readonly rootCert: string;
  stop(): Promise<void>;
}

export async function startOurIstiod(options: {
  readonly kubeconfig: string;
  /** A directory that holds no `cacerts` (the CA then uses Secret `istio-ca-secret`). */
  readonly workDir: string;
  readonly logLevel?: string;
}): Promise<OurIstiod> {
  const config = loadConfig({
    env: {
      POD_NAMESPACE: 'istio-system',
      ROOT_CA_DIR: join(options.workDir, 'no-cacerts'),
      PILOT_DEBOUNCE_AFTER: '50ms',
      LOG_LEVEL: options.logLevel ?? 'warn',
    },
    argv: [
      '--kubeconfig',
      options.kubeconfig,
      '--httpAddr',
      '127.0.0.1:0',
      '--secureGRPCAddr',
      '127.0.0.1:0',
      '--monitoringAddr',
      '127.0.0.1:0',
      '--debugAddr',
      '127.0.0.1:0',
    ],
  });
  const kc = loadKubeConfig(config.kubeconfig);
  const istiod = await startIstiod(config, {
    logger: createLogger({ format: config.logFormat, level: config.logLevel }),
    ...kubeDependencies(kc),
    rootKeyAlgorithm: 'ecdsa-p256',
  });
  return {
    istiod,
    xdsAddress: `127.0.0.1:${istiod.ports.grpc}`,
    rootCert: istiod.meshCa.rootCertPem,
    stop: () => istiod.stop(),
  };
}

export type CertificateResult =
  | { readonly ok: true; readonly certChain: readonly string[] }
  | { readonly ok: false; readonly code: grpc.status; readonly details: string };

/** One `CreateCertificate` call as ztunnel makes it (docs/protocols.md#ca-api): bearer token, CSR, optional impersonation. */
export async function requestCertificate(options: {
  readonly address: string;
  readonly rootCert: string;
  readonly token: string;
  /** The identity the CSR names (the CA ignores it and decides by itself). */
  readonly identity: string;
  readonly impersonate?: string;
  readonly ttlSeconds?: number;
}): Promise<CertificateResult> {
  const csr = await createWorkloadCsr(SpiffeId.parse(options.identity));
  const context = createSecureContext({ ca: options.rootCert, minVersion: 'TLSv1.3' });
  const client = new grpc.Client(options.address, grpc.credentials.createFromSecureContext(context), {
    'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
    'grpc.default_authority': 'istiod.istio-system.svc',
  });
  const def = IstioCertificateService.CreateCertificate;
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${options.token}`);
  const request: ca.IstioCertificateRequestInit = {
    csr: csr.csrPem,
    validityDuration: options.ttlSeconds ?? 3600,
    ...(options.impersonate === undefined
      ? {}
      : { metadata: toStruct({ ImpersonatedIdentity: options.impersonate }) }),
  };
  try {
    return await new Promise<CertificateResult>(resolve => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        metadata,
        { deadline: Date.now() + 30_000 },
        (err: grpc.ServiceError | null, res?: ca.IstioCertificateResponse) => {
          if (err !== null) resolve({ ok: false, code: err.code, details: err.details });
          else resolve({ ok: true, certChain: res?.certChain ?? [] });
        },
      );
    });
  } finally {
    client.close();
  }
}
