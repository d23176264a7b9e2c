/**
 * Plug-in CA material for the CA scenarios, made with the openssl CLI: an RSA 2048 root and ECDSA
 * P-256 intermediates under it (CA:true, keyCertSign), files left in `dir` (`root-cert.pem`, ...).
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { runCommand } from '../exec.ts';

export interface CaMaterial {
  readonly rootPem: string;
  readonly intermediates: readonly { readonly certPem: string; readonly keyPem: string }[];
}

/** Istio's `cacerts` files for intermediate `i` of `m`. */
export function cacertsFiles(m: CaMaterial, i: number): Record<string, string> {
  const int = m.intermediates[i];
  if (int === undefined) throw new Error(`no intermediate ${String(i)}`);
  return {
    'ca-cert.pem': int.certPem,
    'ca-key.pem': int.keyPem,
    'root-cert.pem': m.rootPem,
    'cert-chain.pem': int.certPem + m.rootPem,
  };
}

/** The same files as base64 Secret `data`. */
export function cacertsSecretData(m: CaMaterial, i: number): Record<string, string> {
  return Object.fromEntries(
    Object.entries(cacertsFiles(m, i)).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  );
}

async function openssl(dir: string, args: readonly string[]): Promise<string> {
  const r = await runCommand(['openssl', ...args], { cwd: dir });
  return r.stdout;
}

/** An RSA 2048 root and `count` ECDSA P-256 intermediates under it, made in `dir`. */
export async function makeCaMaterial(dir: string, count: number): Promise<CaMaterial> {
  const ext = join(dir, 'ca.ext');
  writeFileSync(
    ext,
    [
      '[v3_ca]',
      'basicConstraints = critical, CA:true',
      'keyUsage = critical, keyCertSign, cRLSign, digitalSignature',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  await openssl(dir, ['genrsa', '-out', 'root-key.pem', '2048']);
  await openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    'root-key.pem',
    '-sha256',
    '-days',
    '3650',
    '-subj',
    '/O=Plugged Mesh Root/CN=plugged-root',
    '-addext',
    'basicConstraints=critical,CA:true',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    'root-cert.pem',
  ]);
  const intermediates: { certPem: string; keyPem: string }[] = [];
  for (let n = 1; n <= count; n++) {
    await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `int${n}-ec.pem`]);
    await openssl(dir, ['pkcs8', '-topk8', '-nocrypt', '-in', `int${n}-ec.pem`, '-out', `int${n}-key.pem`]);
    await openssl(dir, [
      'req',
      '-new',
      '-key',
      `int${n}-key.pem`,
      '-subj',
      `/O=Plugged Mesh/CN=intermediate-${n}`,
      '-out',
      `int${n}.csr`,
    ]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      `int${n}.csr`,
      '-CA',
      'root-cert.pem',
      '-CAkey',
      'root-key.pem',
      '-CAcreateserial',
      '-days',
      '365',
      '-sha256',
      '-extfile',
      ext,
      '-extensions',
      'v3_ca',
      '-out',
      `int${n}-cert.pem`,
    ]);
    intermediates.push({
      certPem: await openssl(dir, ['x509', '-in', `int${n}-cert.pem`]),
      keyPem: await openssl(dir, ['pkey', '-in', `int${n}-key.pem`]),
    });
  }
  return { rootPem: await openssl(dir, ['x509', '-in', 'root-cert.pem']), intermediates };
}
