/**
 * What the agent answers on its control socket (our counterpart of BIRD's
 * /var/run/calico/bird.ctl, which `calicoctl node status` reads), in the control protocol of
 * @calico-ts/bgp: `status` → `BgpAgentStatus`.
 */
import type { ControlMethods, FsmState, SessionErrorKind } from '@calico-ts/bgp';
import type { PeerType } from './peers.ts';

export const DEFAULT_AGENT_CONTROL_SOCKET = '/var/run/calico/bgp.ctl';

export type BirdProtocolState = 'up' | 'start' | 'down';

export interface AgentPeerStatus {
  /** BIRD protocol name (`Mesh_192_0_2_12`). */
  name: string;
  address: string;
  port: number;
  type: PeerType;
  family: 'ipv4' | 'ipv6';
  asNumber: number;
  /** calicoctl's STATE column: BIRD's protocol state. */
  state: BirdProtocolState;
  /** ISO time of the last state change. */
  since: string;
  /** calicoctl's INFO column: the BGP state, plus the last error while not Established. */
  info: string;
  fsmState: FsmState;
  /** Why the session is not Established (null when it is, or nothing has failed yet). */
  reason: string | null;
  /** What kind of failure `reason` is; null when it is none of the kinds the speaker tells apart. */
  reasonKind: SessionErrorKind | null;
  routesReceived: number;
  routesAccepted: number;
  routesSent: number;
}

export interface BgpAgentStatus {
  live: boolean;
  ready: boolean;
  /** How long the apply round in progress has been running (ms); absent when idle. */
  roundRunningMs?: number | undefined;
  nodeName: string;
  routerId: string | undefined;
  asNumber: number | undefined;
  listenPort: number | undefined;
  /** False until the first datastore listing arrived. */
  synced: boolean;
  datastoreConnected: boolean;
  peers: AgentPeerStatus[];
  routes: { exported: number; learned: number; installed: number; blackholes: number };
  problems: string[];
  lastError: string | undefined;
}

export interface AgentControlMethods extends ControlMethods {
  status: { params: Record<string, never>; result: BgpAgentStatus };
}
