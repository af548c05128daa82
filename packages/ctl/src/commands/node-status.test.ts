import { describe, expect, it } from 'vitest';
import { birdSince, renderAllNodeStatus, renderNodeStatus, renderProtocols } from './node-status.ts';

const now = new Date(2026, 10, 24, 18, 0, 0);
const today = (h: number, m: number, s: number) => new Date(2026, 10, 24, h, m, s).toISOString();

describe('calico node status output', () => {
  it('prints calicoctl’s table: centred headers, left-aligned cells, one table per family', () => {
    const out = renderNodeStatus(
      [
        {
          name: 'Mesh_10_250_12_185',
          address: '10.250.12.185',
          type: 'node-to-node mesh',
          family: 'ipv4',
          state: 'start',
          since: today(17, 37, 59),
          info: 'Connect',
        },
        {
          name: 'Node_10_250_12_1',
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

  it('takes the peer type from the session name as calicoctl does, and lists sessions by name with --protocols', () => {
    const peers = [
      {
        name: 'Global_10_0_0_9_port_1790',
        address: '10.0.0.9',
        type: 'global' as const,
        family: 'ipv4' as const,
        state: 'up' as const,
        since: today(17, 0, 0),
        info: 'Established',
      },
      {
        name: 'Local_Workload_192_168_1_5',
        address: '192.168.1.5',
        type: 'node specific' as const,
        family: 'ipv4' as const,
        state: 'start' as const,
        since: today(17, 1, 0),
        info: 'Passive',
      },
      {
        name: 'Mesh_fd00__2',
        address: 'fd00::2',
        type: 'node-to-node mesh' as const,
        family: 'ipv6' as const,
        state: 'up' as const,
        since: today(17, 2, 0),
        info: 'Established',
      },
    ];
    const status = renderNodeStatus(peers, now);
    expect(status).toContain('| 10.0.0.9     | global    | up    | 17:00:00 | Established |');
    expect(status).not.toContain('192.168.1.5');
    expect(status).toContain('| fd00::2      | node-to-node mesh |');
    expect(renderProtocols(peers, now)).toBe(
      [
        'name                       proto table  state since    info',
        'Global_10_0_0_9_port_1790  BGP   master up    17:00:00 Established',
        'Local_Workload_192_168_1_5 BGP   master start 17:01:00 Passive',
        'Mesh_fd00__2               BGP   master up    17:02:00 Established',
        '',
      ].join('\n'),
    );
  });
});

describe('calico node status --all output', () => {
  it('prints each node with its age and agent state, and the reason of a session that is down', () => {
    const out = renderAllNodeStatus(
      [
        {
          node: 'node-b',
          status: undefined,
          problems: ['status: not written yet'],
        },
        {
          node: 'node-a',
          problems: [],
          status: {
            lastUpdated: new Date(now.getTime() - 4000).toISOString(),
            agent: { birdV4: { state: 'NotReady' } },
            bgp: {
              numberEstablishedV4: 1,
              numberNotEstablishedV4: 1,
              numberEstablishedV6: 0,
              numberNotEstablishedV6: 0,
              peersV4: [
                { peerIP: '10.0.0.2', type: 'NodeMesh', state: 'Established', since: today(17, 0, 0) },
                {
                  peerIP: '192.0.2.9',
                  type: 'GlobalPeer',
                  state: 'Active',
                  since: today(17, 59, 30),
                  reason: 'connection refused: nothing listens on 192.0.2.9:179 (ECONNREFUSED)',
                },
              ],
            },
          },
        },
      ],
      now,
    );
    const lines = out.split('\n');
    expect(lines[0]).toBe('Node node-a (BGP agent NotReady, updated 4s ago)');
    expect(out).toMatch(/\| 10\.0\.0\.2 +\| node-to-node mesh \| up +\| 17:00:00 \| Established +\|/);
    expect(out).toMatch(
      /\| 192\.0\.2\.9 +\| global +\| start \| 17:59:30 \| Active: connection refused: nothing listens on 192\.0\.2\.9:179 \(ECONNREFUSED\) \|/,
    );
    expect(out).toContain('Node node-b: no readable status (status: not written yet)');
    expect(out.indexOf('node-a')).toBeLessThan(out.indexOf('node-b'));
    expect(renderAllNodeStatus([], now)).toBe('No node has written its BGP status (CalicoNodeStatus) yet.\n');
  });
});
