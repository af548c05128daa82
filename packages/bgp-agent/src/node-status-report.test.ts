import { describe, expect, it } from 'vitest';
import type { AgentPeerStatus, BgpAgentStatus } from './agent-control.ts';
import { bgpReadiness, calicoNodeStatusOf } from './node-status-report.ts';

const peer = (over: Partial<AgentPeerStatus>): AgentPeerStatus => ({
  name: 'Mesh_10_0_0_2',
  address: '10.0.0.2',
  port: 179,
  type: 'node-to-node mesh',
  family: 'ipv4',
  asNumber: 64512,
  state: 'up',
  since: '2026-12-04T04:00:00.000Z',
  info: 'Established',
  fsmState: 'Established',
  reason: null,
  reasonKind: null,
  routesReceived: 0,
  routesAccepted: 0,
  routesSent: 0,
  ...over,
});

const agentStatus = (peers: AgentPeerStatus[], ready = true): BgpAgentStatus => ({
  live: true,
  ready,
  nodeName: 'node-a',
  routerId: '10.0.0.1',
  asNumber: 64512,
  listenPort: 179,
  synced: true,
  datastoreConnected: true,
  peers,
  routes: { exported: 0, learned: 0, installed: 0, blackholes: 0 },
  problems: [],
  lastError: undefined,
});

const refused = peer({
  name: 'Global_192_0_2_9',
  address: '192.0.2.9',
  type: 'global',
  state: 'start',
  fsmState: 'Active',
  reason: 'connection refused: nothing listens on 192.0.2.9:179 (ECONNREFUSED)',
  reasonKind: 'connection-refused',
});
const v6 = peer({ name: 'Node_fd00__2', address: 'fd00::2', type: 'node specific', family: 'ipv6' });
const workload = peer({
  name: 'Local_Workload_10_65_0_5',
  address: '10.65.0.5',
  fsmState: 'Active',
  reason: 'x',
});

describe('CalicoNodeStatus from the agent status', () => {
  it("counts and lists the sessions by family with Calico's peer types, and a reason only when down", () => {
    const s = calicoNodeStatusOf(
      agentStatus([peer({}), refused, v6, workload]),
      new Date('2026-12-04T04:01:00.000Z'),
    );
    expect(s.lastUpdated).toBe('2026-12-04T04:01:00.000Z');
    expect(s.agent?.birdV4).toMatchObject({ state: 'Ready', routerID: '10.0.0.1' });
    expect(s.bgp).toEqual({
      numberEstablishedV4: 1,
      numberNotEstablishedV4: 1,
      numberEstablishedV6: 1,
      numberNotEstablishedV6: 0,
      peersV4: [
        { peerIP: '10.0.0.2', type: 'NodeMesh', state: 'Established', since: '2026-12-04T04:00:00.000Z' },
        {
          peerIP: '192.0.2.9',
          type: 'GlobalPeer',
          state: 'Active',
          since: '2026-12-04T04:00:00.000Z',
          reason: refused.reason,
        },
      ],
      peersV6: [
        { peerIP: 'fd00::2', type: 'NodePeer', state: 'Established', since: '2026-12-04T04:00:00.000Z' },
      ],
    });
  });
});

describe('calico-node BGP readiness', () => {
  it('is ready only with every reported session Established, naming each failing peer and its reason', () => {
    expect(bgpReadiness(agentStatus([peer({}), v6, workload]))).toEqual({ ready: true });
    expect(bgpReadiness(agentStatus([peer({}), refused]))).toEqual({
      ready: false,
      detail: `BGP not established with 192.0.2.9 (Global_192_0_2_9, Active: ${refused.reason})`,
    });
    expect(bgpReadiness(agentStatus([], false))).toEqual({ ready: false, detail: 'BGP agent not running' });
  });
});
