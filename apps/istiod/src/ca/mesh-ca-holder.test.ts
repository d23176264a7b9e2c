import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { FakeTimers } from '@ambient-mesh/runtime/testing';
import { createWorkloadCsr, SpiffeId, type CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { CaSources, type MeshCa } from './ca-bootstrap.ts';
import { MeshCaHolder } from './mesh-ca-holder.ts';

const id = SpiffeId.parse('spiffe://cluster.local/ns/apps/sa/web');

function meshCa(ca: CertificateAuthority, rootCertPem = ca.trustBundle.pem): MeshCa {
  return { ca, rootCertPem, source: CaSources.PLUGGED_SECRET };
}

async function signWith(
  holder: MeshCaHolder,
  ttlSeconds: number,
): Promise<{ leaf: X509Certificate; roots: string }> {
  const csr = await createWorkloadCsr(id);
  const issued = await holder.sign({ csrPem: csr.csrPem, identity: id, ttlSeconds });
  return { leaf: new X509Certificate(issued.leafPem), roots: issued.certChain[issued.certChain.length - 1]! };
}

/** Certificates carry whole seconds: a clock on a whole second keeps the expected waits exact. */
const wholeSecondNow = (): number => Math.floor(Date.now() / 1000) * 1000;

const signedBy = (leaf: X509Certificate, ca: CertificateAuthority): boolean =>
  leaf.verify(ca.signingCertificate.publicKey);

describe('MeshCaHolder', () => {
  it('distributes a new root before the CA under it signs, then switches once every certificate has renewed', async () => {
    const timers = new FakeTimers(wholeSecondNow());
    const now = (): number => timers.now();
    const [oldCa, newCa] = await Promise.all([
      createTestCa({ intermediate: true, now }),
      createTestCa({ intermediate: true, now }),
    ]);
    const holder = new MeshCaHolder(meshCa(oldCa), { timers });
    const rootEvents: string[] = [];
    holder.onRoots(() => rootEvents.push(holder.rootCertPem));
    const signers: string[] = [];
    holder.onChange(next => signers.push(next.ca.signingCertificate.serialNumber));
    // Refresh point: the middle of [signing - 120 s backdate, signing + 600 s], 240 s after signing.
    expect(signedBy((await signWith(holder, 600)).leaf, oldCa)).toBe(true);

    const both = newCa.trustBundle.pem + oldCa.trustBundle.pem;
    const outcome = holder.change(meshCa(newCa, both));
    expect(outcome).toMatchObject({ kind: 'staged', addedRoots: 1 });
    // That refresh delay plus a tenth of it.
    expect(outcome.kind === 'staged' && outcome.switchAt.getTime() - timers.now()).toBe(240_000 + 24_000);
    // Distribution: the old CA still signs, every answer and the published bundle carry both roots.
    expect(rootEvents).toEqual([both]);
    expect(holder.rootCertPem).toBe(both);
    const during = await signWith(holder, 120);
    expect(signedBy(during.leaf, oldCa)).toBe(true);
    expect(during.roots).toBe(both);
    expect(signers).toEqual([]);

    timers.advance(263_000);
    expect(signedBy((await signWith(holder, 120)).leaf, oldCa)).toBe(true);
    timers.advance(1_000);
    // The switch: the new CA signs; the roots stay as they were distributed.
    expect(signers).toEqual([newCa.signingCertificate.serialNumber]);
    const after = await signWith(holder, 120);
    expect(signedBy(after.leaf, newCa)).toBe(true);
    expect(after.roots).toBe(both);
    expect(holder.pending).toBeUndefined();
    expect(rootEvents).toEqual([both]);
  });

  it('switches at once to a CA whose roots are trusted already', async () => {
    const timers = new FakeTimers(wholeSecondNow());
    const [oldCa, other] = await Promise.all([createTestCa(), createTestCa()]);
    const holder = new MeshCaHolder(meshCa(oldCa), { timers });
    // Another signer published under the same roots (a new intermediate of the same root).
    expect(holder.change(meshCa(other, oldCa.trustBundle.pem))).toEqual({ kind: 'switched' });
    expect(signedBy((await signWith(holder, 60)).leaf, other)).toBe(true);
    expect(timers.pending).toBe(0);
  });

  it('waits for the default lifetime when it has signed nothing, and a later change replaces a pending one', async () => {
    const timers = new FakeTimers(wholeSecondNow());
    const [oldCa, newCa, third] = await Promise.all([createTestCa(), createTestCa(), createTestCa()]);
    const holder = new MeshCaHolder(meshCa(oldCa), { timers, defaultLifetimeSeconds: 3600 });
    const staged = holder.change(meshCa(newCa));
    expect(staged.kind === 'staged' && staged.switchAt.getTime() - timers.now()).toBe(1_800_000 + 180_000);
    // The administrator goes back to the old root only: nothing new to distribute, at once.
    expect(holder.change(meshCa(third, oldCa.trustBundle.pem))).toEqual({ kind: 'switched' });
    expect(holder.pending).toBeUndefined();
    expect(holder.rootCertPem).toBe(oldCa.trustBundle.pem);
    timers.runAll();
    expect(holder.current.ca).toBe(third);
  });

  it('switches at once without timers (no distribution possible)', async () => {
    const [oldCa, newCa] = await Promise.all([createTestCa(), createTestCa()]);
    const holder = new MeshCaHolder(meshCa(oldCa));
    expect(holder.change(meshCa(newCa))).toEqual({ kind: 'switched' });
    expect(holder.current.ca).toBe(newCa);
  });
});
