import type * as https from 'node:https';
import { describe, expect, it } from 'vitest';
import { InClusterCredentials } from './in-cluster.ts';

describe('InClusterCredentials', () => {
  it('re-reads the token after the refresh period and keeps the last good one when the files are gone', async () => {
    let now = 0;
    const files = new Map([
      ['/sa/ca.crt', 'CA1'],
      ['/sa/token', 'T1\n'],
    ]);
    const read = (p: string): string => {
      const v = files.get(p);
      if (v === undefined) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      return v;
    };
    const creds = new InClusterCredentials({
      server: 'https://10.96.0.1:443',
      dir: '/sa',
      refreshMs: 1000,
      now: () => now,
      read,
    });
    const opts: https.RequestOptions = {};
    await creds.applyToHTTPSOptions(opts);
    expect(opts).toMatchObject({ ca: 'CA1', headers: { authorization: 'Bearer T1' } });

    files.set('/sa/token', 'T2');
    now = 500;
    await creds.applyToHTTPSOptions(opts);
    expect(creds.token).toBe('T1');
    now = 1500;
    await creds.applyToHTTPSOptions(opts);
    expect(creds.token).toBe('T2');

    files.clear();
    now = 3000;
    await creds.applyToHTTPSOptions(opts);
    expect(opts).toMatchObject({ ca: 'CA1', headers: { authorization: 'Bearer T2' } });
    expect(creds.getCurrentCluster().server).toBe('https://10.96.0.1:443');
  });
});
