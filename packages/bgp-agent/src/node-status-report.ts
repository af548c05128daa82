/**
 * The agent's sessions as Calico's CalicoNodeStatus (status.agent.birdV4/V6, status.bgp), so any
 * host can read every node's BGP state from the datastore (`calico node status --all`), and the
 * readiness verdict calico-node reports (Calico's "BGP not established with …"), each failing peer
 * with its reason. `calicoNodeStatusOf` and `bgpReadiness` are pure; `NodeStatusReporter` writes.
 */
import type { CalicoNodeStatusPeer, CalicoNodeStatusStatus, Datastore } from '@calico-ts/datastore';
import { isDatastoreError } from '@calico-ts/datastore';
import type { Logger } from 'pino';
import type { AgentPeerStatus, BgpAgentStatus } from './agent-control.ts';

/** The sessions `calicoctl node status` lists, by their BIRD protocol name, with Calico's peer type. */
const PEER_TYPES = { Mesh: 'NodeMesh', Node: 'NodePeer', Global: 'GlobalPeer' } as const;

function peerTypeOf(name: string): CalicoNodeStatusPeer['type'] | undefined {
  const m = /^(Mesh|Node|Global)_/.exec(name);
  return m ? PEER_TYPES[m[1] as keyof typeof PEER_TYPES] : undefined;
}

/** The sessions calico-node answers for (not the passive Local_Workload_ ones). */
export function reportedPeers(status: BgpAgentStatus): AgentPeerStatus[] {
  return status.peers.filter((p) => peerTypeOf(p.name) !== undefined);
}

function peerEntry(p: AgentPeerStatus): CalicoNodeStatusPeer {
  const entry: CalicoNodeStatusPeer = {
    peerIP: p.address,
    type: peerTypeOf(p.name) ?? 'NodePeer',
    state: p.fsmState,
    since: p.since,
  };
  if (p.fsmState !== 'Established' && p.reason) entry.reason = p.reason;
  return entry;
}

/** CalicoNodeStatus `status` for an agent's status at `now`. */
export function calicoNodeStatusOf(
  status: BgpAgentStatus,
  now: Date,
  startedAt?: Date,
): CalicoNodeStatusStatus {
  const peers = reportedPeers(status);
  const v4 = peers.filter((p) => p.family === 'ipv4');
  const v6 = peers.filter((p) => p.family === 'ipv6');
  const up = (ps: AgentPeerStatus[]) => ps.filter((p) => p.fsmState === 'Established').length;
  const daemon = {
    state: status.ready ? ('Ready' as const) : ('NotReady' as const),
    version: 'calico-ts bgp-agent',
    ...(status.routerId ? { routerID: status.routerId } : {}),
    ...(startedAt ? { lastBootTime: startedAt.toISOString() } : {}),
  };
  return {
    lastUpdated: now.toISOString(),
    agent: { birdV4: daemon, birdV6: daemon },
    bgp: {
      numberEstablishedV4: up(v4),
      numberNotEstablishedV4: v4.length - up(v4),
      numberEstablishedV6: up(v6),
      numberNotEstablishedV6: v6.length - up(v6),
      peersV4: v4.map(peerEntry),
      peersV6: v6.map(peerEntry),
    },
  };
}

/**
 * calico-node's BGP readiness, as Calico's: not ready until the agent runs and every session it
 * answers for is Established; the detail names each peer that is not, and why.
 */
export function bgpReadiness(status: BgpAgentStatus): { ready: boolean; detail?: string } {
  if (!status.ready) {
    return {
      ready: false,
      detail: status.synced ? 'BGP agent not running' : 'BGP agent waiting for the datastore',
    };
  }
  const down = reportedPeers(status).filter((p) => p.fsmState !== 'Established');
  if (down.length === 0) return { ready: true };
  const which = down.map((p) => `${p.address} (${p.name}, ${p.fsmState}: ${p.reason ?? 'no error yet'})`);
  return { ready: false, detail: `BGP not established with ${which.join('; ')}` };
}

/** What decides a new write before the period is up: the sessions' states and reasons. */
function changeKey(status: BgpAgentStatus): string {
  return JSON.stringify([
    status.ready,
    reportedPeers(status).map((p) => [p.address, p.fsmState, p.fsmState === 'Established' ? '' : p.reason]),
  ]);
}

export interface NodeStatusReporterOptions {
  datastore: Datastore;
  nodeName: string;
  status: () => BgpAgentStatus;
  logger: Logger;
  /** Write at least this often (Calico's updatePeriodSeconds; default 10 s). */
  periodMs?: number;
  /** How often to look for a change to write at once (default 1 s). */
  pollMs?: number;
}

/**
 * Keeps the CalicoNodeStatus named after the node up to date: written when a session's state or
 * reason changes (seen within `pollMs`) and every `periodMs` besides. A resource the user created
 * under that name keeps its spec. Writes never overlap; a failed one is logged and retried on the
 * next tick.
 */
export class NodeStatusReporter {
  readonly #o: NodeStatusReporterOptions;
  readonly #startedAt = new Date();
  #timer: NodeJS.Timeout | undefined;
  #lastKey: string | undefined;
  #lastWrite = 0;
  #writing: Promise<void> | undefined;
  #stopped = false;

  constructor(o: NodeStatusReporterOptions) {
    this.#o = o;
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), this.#o.pollMs ?? 1000);
    this.#timer.unref();
    this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#writing;
  }

  /** Write now (waits for a write in progress first). */
  async flush(): Promise<void> {
    await this.#writing;
    await this.#write();
  }

  #tick(): void {
    if (this.#stopped || this.#writing) return;
    const status = this.#o.status();
    const key = changeKey(status);
    const due = Date.now() - this.#lastWrite >= (this.#o.periodMs ?? 10_000);
    if (key === this.#lastKey && !due) return;
    this.#writing = this.#write().finally(() => {
      this.#writing = undefined;
    });
  }

  async #write(): Promise<void> {
    const { datastore, nodeName } = this.#o;
    const status = this.#o.status();
    const key = changeKey(status);
    const body = calicoNodeStatusOf(status, new Date(), this.#startedAt);
    try {
      let spec: { node?: string; classes?: ('Agent' | 'BGP' | 'Routes')[]; updatePeriodSeconds?: number } = {
        node: nodeName,
        classes: ['Agent', 'BGP'],
        updatePeriodSeconds: Math.round((this.#o.periodMs ?? 10_000) / 1000),
      };
      try {
        spec = (await datastore.get('CalicoNodeStatus', nodeName)).spec;
      } catch (err) {
        if (!isDatastoreError(err, 'NotFound')) throw err;
      }
      await datastore.apply('CalicoNodeStatus', { metadata: { name: nodeName }, spec, status: body });
      this.#lastKey = key;
      this.#lastWrite = Date.now();
    } catch (err) {
      this.#o.logger.warn({ err }, 'could not write CalicoNodeStatus; retrying');
    }
  }
}
