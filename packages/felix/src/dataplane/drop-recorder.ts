/**
 * Turns the NFLOG records of policy drops (drop-log.ts) into drop records: who sent what to whom,
 * which direction, tier, policy and rule decided, and whether it was a real drop or a staged
 * policy's would-drop. Addresses are mapped to workload endpoints from every WorkloadEndpoint the
 * syncer delivers (local and remote); policy keys to tiers from the local endpoints' tier lists.
 * Keeps the last records in a ring, counts per policy and rule for Prometheus, and tells
 * listeners of each new record (`calico drops --follow`).
 */
import { EventEmitter } from 'node:events';
import { isResourceOf } from '@calico-ts/datastore';
import { decodePacketHeaders, type NflogPacket } from '@calico-ts/kernel';
import type { DataplaneUpdate } from '../calc/dataplane-update.ts';
import type { PolicyDirection } from '../calc/policy/policy-id.ts';
import { workloadEndpointView } from '../calc/resource-view.ts';
import type { SyncerUpdate } from '../syncer.ts';
import { type DropCause, DropLogNames, type DropVerdict, decodeDropPrefix } from './drop-log.ts';

export interface EndpointRef {
  namespace: string;
  /** The workload (pod) name. */
  workload: string;
  node: string;
}

export interface DropRecord {
  /** Increases by one per record on this node (`calico drops --follow` asks for later ones). */
  seq: number;
  /** ISO time the kernel logged the packet (or Felix received it). */
  time: string;
  node: string;
  direction: PolicyDirection;
  verdict: DropVerdict;
  /** A staged policy would have dropped it; the packet itself went on. */
  staged: boolean;
  tier: string | undefined;
  /** Policy key (`np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>`) for a rule verdict. */
  policy: string | undefined;
  /** Profile name when a profile's Deny rule decided. */
  profile: string | undefined;
  ruleIndex: number | undefined;
  protocol: string;
  srcIp: string;
  dstIp: string;
  srcPort: number | undefined;
  dstPort: number | undefined;
  icmpType: number | undefined;
  icmpCode: number | undefined;
  src: EndpointRef | undefined;
  dst: EndpointRef | undefined;
}

export interface DropFilter {
  /** Only records after this ISO time. */
  since?: string | undefined;
  /** Only records with a greater seq. */
  afterSeq?: number | undefined;
  limit?: number | undefined;
}

const PROTOCOLS: Readonly<Record<number, string>> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  58: 'icmpv6',
  132: 'sctp',
};

interface RecorderEvents {
  record: [DropRecord];
}

export class DropRecorder extends EventEmitter<RecorderEvents> {
  readonly #node: string;
  readonly #capacity: number;
  readonly #ring: DropRecord[] = [];
  readonly #names = new DropLogNames();
  /** Workload endpoint by address, from every WorkloadEndpoint in the datastore. */
  readonly #byIp = new Map<string, EndpointRef>();
  /** Addresses per WorkloadEndpoint key, to forget them on update or delete. */
  readonly #ipsByKey = new Map<string, string[]>();
  /** Tier of each policy key, from the local endpoints' tier lists. */
  readonly #tierOf = new Map<string, string>();
  readonly #counts = new Map<string, { labels: Record<string, string>; n: number }>();
  #unreadable = 0;
  #seq = 0;

  constructor(options: { nodeName: string; capacity?: number }) {
    super();
    this.#node = options.nodeName;
    this.#capacity = options.capacity ?? 2000;
  }

  onSyncerUpdates(updates: readonly SyncerUpdate[]): void {
    for (const u of updates) {
      if (u.kind !== 'WorkloadEndpoint') continue;
      for (const ip of this.#ipsByKey.get(u.key) ?? []) this.#byIp.delete(ip);
      this.#ipsByKey.delete(u.key);
      const view =
        u.value && isResourceOf('WorkloadEndpoint', u.value) ? workloadEndpointView(u.value) : undefined;
      if (!view) continue;
      const ref: EndpointRef = { namespace: view.namespace, workload: view.workload, node: view.node };
      const ips = [...view.ipv4Nets, ...view.ipv6Nets].map((n) => n.split('/')[0]!);
      for (const ip of ips) this.#byIp.set(ip, ref);
      this.#ipsByKey.set(u.key, ips);
    }
  }

  onIntent(batch: readonly DataplaneUpdate[]): void {
    for (const u of batch) {
      if (u.type === 'workloadEndpointUpdate') {
        for (const t of [...u.endpoint.tiers, ...(u.endpoint.stagedTiers ?? [])]) {
          this.#names.note(t.name);
          for (const key of [...t.ingressPolicies, ...t.egressPolicies]) {
            this.#tierOf.set(key, t.name);
            this.#names.note(key);
          }
        }
      } else if (u.type === 'activeProfileUpdate') {
        this.#names.note(`pr/${u.profile.name}`);
      } else if (u.type === 'activePolicyUpdate') {
        this.#names.note(u.policy.key);
      }
    }
  }

  /** Notes a staged policy's key and tier (staged policies are in no endpoint's enforced tiers). */
  noteStaged(key: string, tier: string): void {
    this.#tierOf.set(key, tier);
    this.#names.note(key);
  }

  /** One NFLOG packet; packets whose prefix is not a drop log's are ignored. */
  onPacket(packet: NflogPacket): DropRecord | undefined {
    const cause = decodeDropPrefix(packet.prefix, this.#names);
    const headers = decodePacketHeaders(packet.payload);
    if (!cause || !headers) {
      this.#unreadable++;
      return undefined;
    }
    const record = this.#record(cause, packet, headers);
    this.#ring.push(record);
    if (this.#ring.length > this.#capacity) this.#ring.splice(0, this.#ring.length - this.#capacity);
    const labels = {
      direction: record.direction,
      verdict: record.verdict,
      staged: String(record.staged),
      tier: record.tier ?? '',
      policy: record.policy ?? (record.profile ? `pr/${record.profile}` : ''),
      rule: record.ruleIndex === undefined ? '' : String(record.ruleIndex),
    };
    const key = JSON.stringify(labels);
    const c = this.#counts.get(key) ?? { labels, n: 0 };
    c.n++;
    this.#counts.set(key, c);
    this.emit('record', record);
    return record;
  }

  #record(
    cause: DropCause,
    packet: NflogPacket,
    h: NonNullable<ReturnType<typeof decodePacketHeaders>>,
  ): DropRecord {
    const isProfile = cause.verdict === 'rule' && cause.owner.startsWith('pr/');
    const policy = cause.verdict === 'rule' && !isProfile ? cause.owner : undefined;
    return {
      seq: ++this.#seq,
      time: (packet.timestamp ?? new Date()).toISOString(),
      node: this.#node,
      direction: cause.direction,
      verdict: cause.verdict,
      staged: cause.staged,
      tier: cause.verdict === 'endOfTier' ? cause.owner : policy ? this.#tierOf.get(policy) : undefined,
      policy,
      profile: isProfile ? cause.owner.slice(3) : undefined,
      ruleIndex: cause.ruleIndex,
      protocol: PROTOCOLS[h.protocol] ?? String(h.protocol),
      srcIp: h.srcIp,
      dstIp: h.dstIp,
      srcPort: h.srcPort,
      dstPort: h.dstPort,
      icmpType: h.icmpType,
      icmpCode: h.icmpCode,
      src: this.#byIp.get(h.srcIp),
      dst: this.#byIp.get(h.dstIp),
    };
  }

  /** The records kept, oldest first. */
  records(filter: DropFilter = {}): DropRecord[] {
    let out = this.#ring.filter(
      (r) =>
        (filter.since === undefined || r.time > filter.since) &&
        (filter.afterSeq === undefined || r.seq > filter.afterSeq),
    );
    if (filter.limit !== undefined && out.length > filter.limit) out = out.slice(out.length - filter.limit);
    return out;
  }

  /** Prometheus text: one counter per direction/verdict/tier/policy/rule, plus unreadable records. */
  metrics(): string {
    const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    const lines = [
      '# HELP felix_policy_drop_records_total Packets policy dropped, as logged (rate-limited per flow).',
      '# TYPE felix_policy_drop_records_total counter',
    ];
    for (const { labels, n } of this.#counts.values()) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(',');
      lines.push(`felix_policy_drop_records_total{${l}} ${n}`);
    }
    lines.push(
      '# HELP felix_policy_drop_records_unreadable_total NFLOG records that were not a drop log or had no IP header.',
      '# TYPE felix_policy_drop_records_unreadable_total counter',
      `felix_policy_drop_records_unreadable_total ${this.#unreadable}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
