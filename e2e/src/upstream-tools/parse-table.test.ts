// parseTable against istioctl's aligned tables: columns cut at the header's offsets, each header
// found as a whole word after the previous one.
import { describe, expect, it } from 'vitest';
import { parseTable } from './istioctl.ts';

describe('parseTable', () => {
  it('finds NAME after NAMESPACE, and headers with spaces', () => {
    const text = [
      'NAMESPACE             NAME         REVISION     TRAFFIC TYPE     PROGRAMMED',
      'tools-istioctl-wp     waypoint     default      all              True',
      '',
    ].join('\n');
    expect(parseTable(text, ['NAMESPACE', 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'])).toEqual([
      {
        NAMESPACE: 'tools-istioctl-wp',
        NAME: 'waypoint',
        REVISION: 'default',
        'TRAFFIC TYPE': 'all',
        PROGRAMMED: 'True',
      },
    ]);
  });

  it('keeps empty cells empty and gives nothing when a header is missing', () => {
    const text = [
      'NAMESPACE  POD NAME  ADDRESS   NODE    WAYPOINT  PROTOCOL',
      'ns         a         10.0.0.1          None      HBONE',
    ].join('\n');
    const columns = ['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'];
    expect(parseTable(text, columns)).toEqual([
      {
        NAMESPACE: 'ns',
        'POD NAME': 'a',
        ADDRESS: '10.0.0.1',
        NODE: '',
        WAYPOINT: 'None',
        PROTOCOL: 'HBONE',
      },
    ]);
    expect(parseTable(text, ['NAMESPACE', 'CLUSTER'])).toEqual([]);
  });
});
