import { describe, expect, it } from 'vitest';
import { parseStreamPath } from './stream-proxy.ts';

describe('parseStreamPath', () => {
  it('reads the kubelet API paths with and without the pod uid', () => {
    expect(parseStreamPath('/exec/default/echo/c')).toEqual({
      verb: 'exec',
      namespace: 'default',
      pod: 'echo',
      container: 'c',
    });
    expect(parseStreamPath('/attach/ns/p/uid-1/c')?.container).toBe('c');
    expect(parseStreamPath('/run/ns/p/c')?.verb).toBe('run');
    expect(parseStreamPath('/portForward/ns/p')).toEqual({
      verb: 'portForward',
      namespace: 'ns',
      pod: 'p',
      container: undefined,
    });
    expect(parseStreamPath('/portForward/ns/p/uid-1')?.pod).toBe('p');
  });

  it('rejects other paths', () => {
    expect(parseStreamPath('/exec/ns/p')).toBeUndefined();
    expect(parseStreamPath('/portForward/ns/p/uid/extra')).toBeUndefined();
    expect(parseStreamPath('/containerLogs/ns/p/c')).toBeUndefined();
  });
});
