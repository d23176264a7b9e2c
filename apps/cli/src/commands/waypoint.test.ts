import { describe, expect, it } from 'vitest';
import { runCli } from '../testing.ts';
import {
  formatWaypointList,
  formatWaypointStatus,
  isProgrammed,
  waypointGateway,
  type GatewayObject,
} from './waypoint.ts';

function gw(
  name: string,
  ns: string,
  programmed: string | undefined,
  labels: Record<string, string> = {},
): GatewayObject {
  return {
    ...waypointGateway({ name, namespace: ns, for: 'service' }),
    metadata: { name, namespace: ns, labels: { 'istio.io/waypoint-for': 'service', ...labels } },
    ...(programmed === undefined
      ? {}
      : {
          status: {
            conditions: [
              {
                type: 'Programmed',
                status: programmed,
                reason: programmed === 'True' ? 'Programmed' : 'Pending',
                message: 'm',
              },
            ],
          },
        }),
  };
}

describe('waypoint', () => {
  it("generates istioctl's Gateway: class istio-waypoint, listener mesh 15008 HBONE, waypoint-for label", () => {
    expect(waypointGateway({ name: 'waypoint', namespace: 'sample', for: 'service' })).toEqual({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'waypoint', namespace: 'sample', labels: { 'istio.io/waypoint-for': 'service' } },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    });
    expect(
      waypointGateway({ name: 'w', namespace: 's', for: 'workload', revision: 'canary' }).metadata.labels,
    ).toEqual({
      'istio.io/waypoint-for': 'workload',
      'istio.io/rev': 'canary',
    });
    expect(() => waypointGateway({ name: 'w', namespace: 's', for: 'everything' })).toThrow(
      /--for "everything" is not one of/,
    );
  });

  it('prints the generated YAML with generate', async () => {
    const r = await runCli(['waypoint', 'generate', '-n', 'sample', '--for', 'all']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('gatewayClassName: istio-waypoint');
    expect(r.stdout).toContain('istio.io/waypoint-for: all');
    expect(r.stdout).toContain('protocol: HBONE');
  });

  it('lists waypoints with revision, traffic type and Programmed', () => {
    const list = [
      gw('waypoint', 'sample', 'True'),
      gw('w2', 'other', undefined, { 'istio.io/rev': 'canary' }),
    ];
    expect(formatWaypointList(list, false, 'table')).toBe(
      'NAME     REVISION TRAFFIC TYPE PROGRAMMED\nwaypoint default  service      True\nw2       canary   service      Unknown\n',
    );
    expect(formatWaypointList(list, true, 'table').split('\n')[0]).toBe(
      'NAMESPACE NAME     REVISION TRAFFIC TYPE PROGRAMMED',
    );
    const notWaypoint: GatewayObject = {
      ...gw('ingress', 'sample', 'True'),
      spec: { gatewayClassName: 'istio', listeners: [] },
    };
    expect(formatWaypointList([notWaypoint], false, 'table')).toBe('NAME REVISION TRAFFIC TYPE PROGRAMMED\n');
  });

  it('shows status conditions and Programmed', () => {
    expect(isProgrammed(gw('a', 's', 'True'))).toBe(true);
    expect(isProgrammed(gw('a', 's', 'False'))).toBe(false);
    expect(formatWaypointStatus([gw('a', 's', 'False')], 'table')).toBe(
      'NAMESPACE NAME STATUS TYPE       REASON  MESSAGE\ns         a    False  Programmed Pending m\n',
    );
    expect(formatWaypointStatus([gw('a', 's', undefined)], 'table')).toContain(
      'no status yet: is istiod running?',
    );
  });

  it('refuses delete without names or --all', async () => {
    const r = await runCli(['waypoint', 'delete', '-n', 'sample']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/name the waypoints to delete, or use --all/);
  });
});
