// spiffe-certs: CSR generation + CA signing per second, and peer chain verifications per second.
// Each measurement has a baseline taken in the same run from raw node:crypto primitives doing the
// minimum cryptographic work of the same operation. Loops are bounded by count and by time.
//
//   npx node --conditions=@ambient-mesh/source benchmarks/spiffe-certs/run.ts
import { X509Certificate, generateKeyPair, sign, verify } from 'node:crypto';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import {
  CertificateAuthority,
  SpiffeId,
  createWorkloadCsr,
  verifyPeerChain,
  type CaKeyAlgorithm,
} from '@ambient-mesh/spiffe-certs';
import { createTestCa, issueWorkloadCert } from '@ambient-mesh/spiffe-certs/testing';

const generateKeyPairAsync = promisify(generateKeyPair);
const MAX_MS = 3000;
const MAX_OPS = 20_000;
const identity = SpiffeId.parse('spiffe://cluster.local/ns/bench/sa/workload');

interface Rate {
  readonly ops: number;
  readonly perSecond: number;
}

/** Runs `op` with `concurrency` workers until MAX_OPS or MAX_MS, after a short warm-up. */
async function measure(op: () => unknown, concurrency = 1): Promise<Rate> {
  for (let i = 0; i < 20; i++) await op();
  let ops = 0;
  const start = performance.now();
  const deadline = start + MAX_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (ops < MAX_OPS && performance.now() < deadline) {
        ops++;
        await op();
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { ops, perSecond: ops / seconds };
}

function row(name: string, rate: Rate, baseline?: Rate): string {
  const ratio = baseline === undefined ? '' : `${((rate.perSecond / baseline.perSecond) * 100).toFixed(0)} %`;
  return `| ${name} | ${rate.perSecond.toFixed(0)} | ${rate.ops} | ${ratio} |`;
}

const payload = Buffer.alloc(300, 7); // about the size of a CSR's or certificate's signed part

async function baselineIssue(caKey: CaKeyAlgorithm): Promise<() => Promise<void>> {
  const ca =
    caKey === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return async () => {
    const leaf = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
    const csrSig = sign('sha256', payload, leaf.privateKey);
    if (!verify('sha256', payload, leaf.publicKey, csrSig)) throw new Error('baseline verify failed');
    sign('sha256', payload, ca.privateKey);
  };
}

const lines: string[] = [];
lines.push(
  `Node ${process.version}, ${cpus().length} CPU (${cpus()[0]?.model ?? 'unknown'}); each run ≤ ${MAX_MS / 1000} s or ${MAX_OPS} ops.`,
  '',
  '### CSR generation + signing',
  '',
  'One op = new ECDSA P-256 key, PKCS#10 CSR, CA parses and checks the CSR, signs the leaf, builds the response.',
  'Baseline = raw node:crypto: P-256 key generation, CSR-sized sign + verify, CA-sized sign.',
  '',
  '| case | ops/s | ops | of baseline |',
  '|---|---|---|---|',
);
for (const keyAlgorithm of ['rsa-2048', 'ecdsa-p256'] as const) {
  const ca = await CertificateAuthority.createSelfSigned({ keyAlgorithm });
  const issue = async () => {
    const csr = await createWorkloadCsr(identity);
    await ca.sign({ csrPem: csr.csrPem, identity });
  };
  for (const concurrency of [1, 8]) {
    const baseline = await measure(await baselineIssue(keyAlgorithm), concurrency);
    const rate = await measure(issue, concurrency);
    lines.push(row(`baseline, ${keyAlgorithm} CA, concurrency ${concurrency}`, baseline));
    lines.push(
      row(`createWorkloadCsr + ca.sign, ${keyAlgorithm} CA, concurrency ${concurrency}`, rate, baseline),
    );
  }
}

lines.push(
  '',
  '### Chain verification',
  '',
  'One op = verifyPeerChain on PEM input (parse, path to the root, validity, SAN from DER, trust domain).',
  'Baseline = X509Certificate.verify(issuer.publicKey) for each link on pre-parsed certificates.',
  '',
  '| case | ops/s | ops | of baseline |',
  '|---|---|---|---|',
);
for (const intermediate of [false, true]) {
  for (const keyAlgorithm of ['rsa-2048', 'ecdsa-p256'] as const) {
    const ca = await createTestCa({ keyAlgorithm, intermediate });
    const bundle = ca.trustBundle;
    const cert = await issueWorkloadCert(ca, identity);
    const parsed = [...cert.certChain.map(pem => new X509Certificate(pem)), bundle.roots[0]!];
    const baseline = await measure(() => {
      for (let i = 0; i + 1 < parsed.length; i++) {
        if (!parsed[i]!.verify(parsed[i + 1]!.publicKey)) throw new Error('baseline verify failed');
      }
    });
    const rate = await measure(() => {
      const result = verifyPeerChain(cert.certChain, { bundle, trustDomain: 'cluster.local' });
      if (!result.ok) throw result.error;
    });
    const shape = intermediate ? 'leaf → intermediate → root' : 'leaf → root';
    lines.push(row(`baseline, ${keyAlgorithm}, ${shape}`, baseline));
    lines.push(row(`verifyPeerChain, ${keyAlgorithm}, ${shape}`, rate, baseline));
  }
}
console.log(lines.join('\n'));
