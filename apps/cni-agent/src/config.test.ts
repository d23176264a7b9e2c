import { describe, expect, it } from 'vitest';
import { CniConfigError } from './errors.ts';
import { DEFAULTS, loadConfig, parseFlags } from './config.ts';

describe('loadConfig', () => {
  it('applies the upstream defaults', () => {
    const c = loadConfig({ NODE_NAME: 'node-a' });
    expect(c).toMatchObject({
      nodeName: 'node-a',
      systemNamespace: 'istio-system',
      ztunnelUdsAddress: '/var/run/ztunnel/ztunnel.sock',
      runDir: '/var/run/istio-cni',
      pluginEventSocket: '/var/run/istio-cni/pluginevent.sock',
      dnsCapture: true,
      ipv6: true,
      probeSnatV4: '169.254.7.127',
      probeSnatV6: 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff',
      reconcileOnStartup: true,
      driftCheckIntervalMs: 60_000,
      kubeletUid: null,
      readinessPort: 8000,
      monitoringPort: 15014,
      logFormat: 'text',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('captures DNS (ztunnel proxies it) and IPv6 (ztunnel listens on both families) by default', () => {
    expect(DEFAULTS.dnsCapture).toBe(true);
    expect(DEFAULTS.ipv6).toBe(true);
    const c = loadConfig({ NODE_NAME: 'n' }, []);
    expect({ dnsCapture: c.dnsCapture, ipv6: c.ipv6 }).toEqual({ dnsCapture: true, ipv6: true });
    const off = loadConfig({ NODE_NAME: 'n', AMBIENT_DNS_CAPTURE: 'false', AMBIENT_IPV6: 'false' }, []);
    expect({ dnsCapture: off.dnsCapture, ipv6: off.ipv6 }).toEqual({ dnsCapture: false, ipv6: false });
  });

  it('allows root on the ZDS socket by default; ZDS_ALLOWED_UIDS lists others, and must be uids', () => {
    expect(loadConfig({ NODE_NAME: 'n' }, []).zdsAllowedUids).toEqual([0]);
    expect(loadConfig({ NODE_NAME: 'n', ZDS_ALLOWED_UIDS: '0, 1337' }, []).zdsAllowedUids).toEqual([0, 1337]);
    expect(() => loadConfig({ NODE_NAME: 'n', ZDS_ALLOWED_UIDS: 'root' }, [])).toThrow(/ZDS_ALLOWED_UIDS/);
  });

  it('reports every bad setting at once', () => {
    let caught: unknown;
    try {
      loadConfig({ AMBIENT_IPV6: 'maybe', READINESS_PORT: '-1', LOG_LEVEL: 'loud' }, ['--bogus']);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CniConfigError);
    expect((caught as CniConfigError).code).toBe('CNI_CONFIG_INVALID');
    expect((caught as CniConfigError).settings).toEqual([
      '--bogus',
      'NODE_NAME',
      'AMBIENT_IPV6',
      'READINESS_PORT',
      'LOG_LEVEL',
    ]);
  });

  it('reads env and lets flags win', () => {
    const c = loadConfig(
      {
        NODE_NAME: 'n',
        POD_NAMESPACE: 'mesh',
        ZTUNNEL_UDS_ADDRESS: '/env/zt.sock',
        AMBIENT_DNS_CAPTURE: 'false',
        HOST_PROBE_SNAT_ADDRESS: '169.254.9.9',
        KUBELET_UID: '0',
        LOG_FORMAT: 'text',
      },
      ['--ztunnel-uds-address=/flag/zt.sock', '--cni-agent-run-dir', '/run/cni/', '--log_as_json'],
    );
    expect(c).toMatchObject({
      systemNamespace: 'mesh',
      ztunnelUdsAddress: '/flag/zt.sock',
      runDir: '/run/cni',
      pluginEventSocket: '/run/cni/pluginevent.sock',
      dnsCapture: false,
      probeSnatV4: '169.254.9.9',
      kubeletUid: 0,
      logFormat: 'json',
    });
  });

  const bad: [string, Record<string, string>, string[]][] = [
    ['NODE_NAME', {}, []],
    ['AMBIENT_DNS_CAPTURE', { NODE_NAME: 'n', AMBIENT_DNS_CAPTURE: 'maybe' }, []],
    ['HOST_PROBE_SNAT_ADDRESS', { NODE_NAME: 'n', HOST_PROBE_SNAT_ADDRESS: 'fd00::1' }, []],
    ['--ztunnel-uds-address', { NODE_NAME: 'n' }, ['--ztunnel-uds-address=relative.sock']],
    ['--monitoring-port', { NODE_NAME: 'n' }, ['--monitoring-port=70000']],
    ['--bogus', { NODE_NAME: 'n' }, ['--bogus=1']],
    ['LOG_FORMAT', { NODE_NAME: 'n', LOG_FORMAT: 'xml' }, []],
  ];
  for (const [setting, env, argv] of bad) {
    it(`rejects a bad ${setting} and names it`, () => {
      let caught: unknown;
      try {
        loadConfig(env, argv);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CniConfigError);
      expect((caught as CniConfigError).setting).toBe(setting);
    });
  }

  it('parses flags with = or a separate value', () => {
    expect([...parseFlags(['--kubeconfig', '/k', '--readiness-port=9'])]).toEqual([
      ['kubeconfig', '/k'],
      ['readiness-port', '9'],
    ]);
  });
});
