import { describe, expect, it } from 'vitest';
import {
  AddonNotBuiltError,
  MissingCapabilityError,
  SyscallError,
  UnsupportedPlatformError,
} from './errors.ts';
import { ADDON_PATH, loadBinding } from './native.ts';
import { Capability, translateError } from './syscall-errors.ts';

describe('loadBinding', () => {
  it('fails at load time on a platform other than Linux, naming it', () => {
    expect(() => loadBinding('darwin')).toThrow(UnsupportedPlatformError);
    expect(() => loadBinding('win32')).toThrow(/works only on Linux.*'win32'/);
  });

  it('reports a missing binary as AddonNotBuiltError with the rebuild hint', () => {
    const missing = () => {
      throw new Error('Cannot find module');
    };
    expect(() => loadBinding('linux', missing, '/nonexistent/ambient_netns.node')).toThrow(
      AddonNotBuiltError,
    );
    expect(() => loadBinding('linux', missing)).toThrow(/npm rebuild @ambient-mesh\/netns/);
  });

  it('loads the compiled addon from build/Release', () => {
    expect(ADDON_PATH).toMatch(/build\/Release\/ambient_netns\.node$/);
    const binding = loadBinding();
    expect(binding.constants.SO_MARK).toBe(36);
    expect(typeof binding.currentNetnsInode()).toBe('number');
  });
});

describe('translateError', () => {
  it('names the capability for EPERM and EACCES when the step has one', () => {
    const eperm = Object.assign(new Error('setsockopt failed'), { code: 'EPERM', syscall: 'setsockopt' });
    const err = translateError(eperm, 'set SO_MARK', Capability.setMark);
    expect(err).toBeInstanceOf(MissingCapabilityError);
    expect(err.message).toBe(
      'set SO_MARK needs CAP_NET_ADMIN; run as root or grant the process CAP_NET_ADMIN',
    );
    expect(err).toMatchObject({ capability: 'CAP_NET_ADMIN', code: 'NETNS_MISSING_CAPABILITY' });
  });

  it('keeps other errno failures as SyscallError with the errno name', () => {
    const refused = Object.assign(new Error('x'), { code: 'ECONNREFUSED', syscall: 'connect' });
    const err = translateError(refused, 'connect', Capability.setMark);
    expect(err).toBeInstanceOf(SyscallError);
    expect(err).toMatchObject({ errnoCode: 'ECONNREFUSED', syscall: 'connect' });
  });
});
