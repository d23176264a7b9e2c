import { describe, expect, it } from 'vitest';
import { isMeshError } from '@ambient-mesh/errors';
import { BindError, ConfigError, DrainTimeoutError, StartError } from './errors.ts';

describe('runtime errors', () => {
  it('carry stable RUNTIME_ codes and say what to check', () => {
    const config = new ConfigError([{ setting: 'A', message: 'bad' }]);
    expect(isMeshError(config, 'RUNTIME_CONFIG_INVALID')).toBe(true);
    expect(config.details).toEqual([{ setting: 'A', message: 'bad' }]);
    expect(new BindError('admin', '127.0.0.1:15000')).toMatchObject({
      code: 'RUNTIME_BIND_FAILED',
      listener: 'admin',
      address: '127.0.0.1:15000',
    });
    expect(new DrainTimeoutError(5).message).toMatch(/within 5 ms/);
    expect(new StartError('istiod', { cause: new Error('boom') }).message).toBe(
      'istiod failed to start: boom; check the log lines above',
    );
    expect(new StartError('istiod').code).toBe('RUNTIME_START_FAILED');
  });
});
