/**
 * Active policies and profiles (policy_mgr.go): their `cali-pi-`/`cali-po-` and
 * `cali-pri-`/`cali-pro-` chains in the filter table, rendered from the intent stream. Each
 * policy's chains are rendered once per change and cached: the same Chain objects until the
 * policy changes, so the dataplane skips them without rendering or comparing. The dataplane
 * writes them in the same iptables-restore as the endpoint chains that jump to them, and the
 * kernel layer's rule-by-rule diff rewrites only the chains a change touched.
 */
import type { ActivePolicy, ActiveProfile, DataplaneUpdate } from '../calc/dataplane-update.ts';
import { policyChains, profileChains, type RenderOptions } from '../calc/policy/rule-render.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, TableName } from './chains.ts';
import type { Manager } from './manager.ts';
import type { MarkBits } from './mark-bits.ts';

export class PolicyManager implements Manager {
  readonly name = 'policy';
  #policies = new Map<string, ActivePolicy>();
  #profiles = new Map<string, ActiveProfile>();
  /** Rendered chains per policy key / profile name, for the marks they were rendered with. */
  #rendered = new Map<string, Chain[]>();
  #renderedFor: string | undefined;
  /** All chains in key order, as last assembled; dropped by any change. */
  #all: Chain[] | undefined;
  #marks: () => MarkBits;

  constructor(marks: () => MarkBits) {
    this.#marks = marks;
  }

  onUpdate(msg: DataplaneUpdate): void {
    switch (msg.type) {
      case 'activePolicyUpdate':
      case 'activePolicyRemove':
      case 'activeProfileUpdate':
      case 'activeProfileRemove':
        this.#all = undefined;
        break;
      default:
        return;
    }
    switch (msg.type) {
      case 'activePolicyUpdate':
        this.#policies.set(msg.policy.key, msg.policy);
        this.#rendered.delete(`policy:${msg.policy.key}`);
        return;
      case 'activePolicyRemove':
        this.#policies.delete(msg.key);
        this.#rendered.delete(`policy:${msg.key}`);
        return;
      case 'activeProfileUpdate':
        this.#profiles.set(msg.profile.name, msg.profile);
        this.#rendered.delete(`profile:${msg.profile.name}`);
        return;
      case 'activeProfileRemove':
        this.#profiles.delete(msg.name);
        this.#rendered.delete(`profile:${msg.name}`);
        return;
      default:
        return;
    }
  }

  async completeDeferredWork(): Promise<void> {}

  /** Whether the chains of this policy key are programmed with the next apply. */
  hasPolicy(key: string): boolean {
    return this.#policies.has(key);
  }

  hasProfile(name: string): boolean {
    return this.#profiles.has(name);
  }

  chains(config: FelixConfig): Partial<Record<TableName, { chains: Chain[] }>> {
    const opts: RenderOptions = { marks: this.#marks(), family: 4, dropLogs: config.dropLogs };
    const fingerprint = JSON.stringify(opts);
    if (fingerprint !== this.#renderedFor) {
      this.#rendered.clear();
      this.#renderedFor = fingerprint;
      this.#all = undefined;
    }
    if (this.#all) return { filter: { chains: this.#all } };
    const chains: Chain[] = [];
    for (const [key, p] of [...this.#policies].sort(byKey)) {
      chains.push(...this.#cached(`policy:${key}`, () => policyChains(p, opts)));
    }
    for (const [name, p] of [...this.#profiles].sort(byKey)) {
      chains.push(...this.#cached(`profile:${name}`, () => profileChains(p, opts)));
    }
    this.#all = chains;
    return { filter: { chains } };
  }

  /**
   * The same chains for ip6tables (rules filtered to IPv6, `cali60` sets, ICMPv6). Cached per
   * policy object: an update replaces the object, so a changed policy renders again.
   */
  chains6(config: FelixConfig): Partial<Record<TableName, { chains: Chain[] }>> {
    const marks = this.#marks();
    if (marks !== this.#marks6For || config.dropLogs !== this.#dropLogs6For) {
      this.#rendered6 = new WeakMap();
      this.#marks6For = marks;
      this.#dropLogs6For = config.dropLogs;
    }
    const opts: RenderOptions = { marks, family: 6, dropLogs: config.dropLogs };
    const render = (source: ActivePolicy | ActiveProfile, make: () => Chain[]) => {
      let chains = this.#rendered6.get(source);
      if (!chains) {
        chains = make();
        this.#rendered6.set(source, chains);
      }
      return chains;
    };
    const chains: Chain[] = [];
    for (const [, p] of [...this.#policies].sort(byKey))
      chains.push(...render(p, () => policyChains(p, opts)));
    for (const [, p] of [...this.#profiles].sort(byKey))
      chains.push(...render(p, () => profileChains(p, opts)));
    return { filter: { chains } };
  }

  #rendered6 = new WeakMap<ActivePolicy | ActiveProfile, Chain[]>();
  #marks6For: MarkBits | undefined;
  #dropLogs6For: boolean | undefined;

  #cached(key: string, render: () => Chain[]): Chain[] {
    let chains = this.#rendered.get(key);
    if (!chains) {
      chains = render();
      this.#rendered.set(key, chains);
    }
    return chains;
  }
}

const byKey = <T>([a]: [string, T], [b]: [string, T]) => (a < b ? -1 : a > b ? 1 : 0);
