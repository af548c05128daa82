import { describe, expect, it } from 'vitest';
import { birdSince, renderNodeStatus } from './node-status.ts';

const now = new Date(2026, 10, 24, 18, 0, 0);
const today = (h: number, m: number, s: number) => new Date(2026, 10, 24, h, m, s).toISOString();

describe('calico node status output', () => {
  it('prints calicoctl’s table: centred headers, left-aligned cells, one table per family', () => {
    const out = renderNodeStatus(
      [
        {
          address: '10.250.12.185',
          type: 'node-to-node mesh',
          family: 'ipv4',
          state: 'start',
          since: today(17, 37, 59),
          info: 'Connect',
        },
        {
          address: '10.250.12.1',
          type: 'node specific',
          family: 'ipv4',
          state: 'up',
          since: today(17, 38, 13),
          info: 'Established',
        },
      ],
      now,
    );
    expect(out).toBe(
      [
        'Calico process is running.',
        '',
        'IPv4 BGP status',
        '+---------------+-------------------+-------+----------+-------------+',
        '| PEER ADDRESS  |     PEER TYPE     | STATE |  SINCE   |    INFO     |',
        '+---------------+-------------------+-------+----------+-------------+',
        '| 10.250.12.185 | node-to-node mesh | start | 17:37:59 | Connect     |',
        '| 10.250.12.1   | node specific     | up    | 17:38:13 | Established |',
        '+---------------+-------------------+-------+----------+-------------+',
        '',
        'IPv6 BGP status',
        'No IPv6 peers found.',
        '',
      ].join('\n'),
    );
  });

  it('says when there are no peers, and shows the date for sessions older than today', () => {
    expect(renderNodeStatus([], now)).toBe(
      'Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n',
    );
    expect(birdSince(new Date(2026, 10, 21, 9, 0, 0).toISOString(), now)).toBe('2026-11-21');
  });
});
