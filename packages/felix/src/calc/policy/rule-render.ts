/**
 * Parsed rules as iptables rules in Felix's shape (felix/rules/policy.go, iptables/match.go;
 * calico-internals §3.3): one match per rule where iptables can express it, "match blocks" over
 * the scratch mark bits where it cannot (several positive CIDRs, negated CIDRs beside a positive
 * one, more than 15 port slots, named ports ORed with numeric ones), then the action: Allow and
 * Pass set their mark and RETURN, Deny sets the drop mark and DROPs, Log logs and goes on.
 */
import { renderRule as kernelRule, ruleHash } from '@calico-ts/kernel';
import { type Chain, type Rule, renderRule } from '../../dataplane/chains.ts';
import { type DropCause, nflogRule } from '../../dataplane/drop-log.ts';
import { hex, type MarkBits } from '../../dataplane/mark-bits.ts';
import { ipsetName } from '../../dataplane/static-chains.ts';
import type { ParsedRule, ParsedRuleSide, PortRange } from './parsed-rule.ts';
import type { ActivePolicySet, CompiledPolicy, CompiledProfile } from './policy-catalog.ts';
import {
  isStagedKind,
  type PolicyDirection,
  policyChainName,
  profileChainName,
  stagedPolicyChainName,
  stagedProfileChainName,
} from './policy-id.ts';

export type IpFamily = 4 | 6;

export interface RenderOptions {
  marks: MarkBits;
  family: IpFamily;
  /** `LOG --log-prefix` for Log rules (FelixConfiguration logPrefix). */
  logPrefix?: string;
  /** An NFLOG record (drop-log.ts) before each Deny rule's DROP. */
  dropLogs?: boolean;
  /**
   * The staged-evaluation form: a Deny sets the drop and accept marks, records a staged drop and
   * returns (never drops); Log rules are left out (the enforced chain logs already).
   */
  stagedForm?: boolean;
}

/** Whose rules a chain holds, for the drop records of its Deny rules. */
export interface DropLogOwner {
  /** Policy key or `pr/<profile>`. */
  owner: string;
  direction: PolicyDirection;
  staged?: boolean;
}

/** Kernel name of a policy IP set: `cali40<id>` / `cali60<id>`, at most 31 characters. */
export function policyIpsetName(id: string, family: IpFamily): string {
  return family === 4 ? ipsetName(id) : `cali60${id}`.slice(0, 31);
}

/** Protocols with ports an iptables rule can match. */
export const PORT_PROTOCOLS: readonly number[] = [6, 17, 132];

const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  58: 'icmpv6',
  132: 'sctp',
  136: 'udplite',
};

const protocolText = (n: number) => PROTOCOL_NAMES[n] ?? String(n);

const isV6 = (net: string) => net.includes(':');
const isCatchAll = (net: string) => net === '0.0.0.0/0' || net === '::/0';

/**
 * The rule as rendered in one IP family (`FilterRuleToIPVersion`), or undefined when it has no
 * meaning there: another ipVersion, ICMP in IPv6 or ICMPv6 in IPv4, or a nets list that only
 * holds the other family's CIDRs, or a negated catch-all CIDR. Both the renderer and the evaluator go through this.
 */
export function ruleForFamily(rule: ParsedRule, family: IpFamily): ParsedRule | undefined {
  if (rule.ipVersion !== undefined && rule.ipVersion !== family) return undefined;
  // ICMP exists only in IPv4 and ICMPv6 only in IPv6: such a rule has no meaning in the other
  // family (and its type match would not load there).
  if ((rule.protocol === 1 && family === 6) || (rule.protocol === 58 && family === 4)) return undefined;
  let dropped = false;
  const filter = (nets: readonly string[], negated: boolean): string[] => {
    if (nets.length === 0) return [];
    const kept = nets.filter((n) => isV6(n) === (family === 6));
    if (kept.length === 0 || (negated && kept.some(isCatchAll))) dropped = true;
    return kept;
  };
  const side = (s: ParsedRuleSide): ParsedRuleSide => ({
    ...s,
    nets: filter(s.nets, false),
    notNets: filter(s.notNets, true),
  });
  const out = { ...rule, src: side(rule.src), dst: side(rule.dst) };
  return dropped ? undefined : out;
}

const hasNumericPorts = (rule: ParsedRule) =>
  rule.src.ports.length + rule.src.notPorts.length + rule.dst.ports.length + rule.dst.notPorts.length > 0;

/**
 * iptables' multiport needs `-p tcp|udp|sctp`; a rule with numeric ports but no protocol is
 * rendered once per port protocol so it matches what the model means (ports of any of them).
 */
function protocolVariants(rule: ParsedRule): ParsedRule[] {
  if (rule.protocol !== undefined || !hasNumericPorts(rule)) return [rule];
  return PORT_PROTOCOLS.map((protocol) => ({ ...rule, protocol }));
}

/** Groups of at most 15 multiport slots; a range takes two (`SplitPortList`). */
export function splitPortList(ports: readonly PortRange[]): PortRange[][] {
  const splits: PortRange[][] = [];
  let split: PortRange[] = [];
  let free = 15;
  for (const p of ports) {
    const need = p.first === p.last ? 1 : 2;
    if (free < need) {
      splits.push(split);
      split = [];
      free = 15;
    }
    split.push(p);
    free -= need;
  }
  if (split.length > 0) splits.push(split);
  return splits;
}

const portsText = (ports: readonly PortRange[]) =>
  ports.map((p) => (p.first === p.last ? `${p.first}` : `${p.first}:${p.last}`)).join(',');

type Side = 'src' | 'dst';
const NET_FLAG: Readonly<Record<Side, string>> = { src: '--source', dst: '--destination' };
const PORT_FLAG: Readonly<Record<Side, string>> = { src: '--source-ports', dst: '--destination-ports' };
const SET_DIR: Readonly<Record<Side, string>> = { src: 'src', dst: 'dst' };

const markSet = (bit: number) => `-j MARK --set-xmark ${hex(bit)}/${hex(bit)}`;
const markClear = (bits: number) => `-j MARK --set-xmark 0x0/${hex(bits)}`;
const markIsSet = (bit: number) => `-m mark --mark ${hex(bit)}/${hex(bit)}`;
const markIsClear = (bit: number) => `-m mark --mark 0x0/${hex(bit)}`;

/** Felix's matchBlockBuilder: ORs inside a block via a mark bit, ANDs across blocks. */
class MatchBlocks {
  readonly rules: Rule[] = [];
  using = false;
  #donePositive = false;
  readonly #all: number;
  readonly #this: number;

  constructor(marks: MarkBits) {
    this.#all = marks.scratch0;
    this.#this = marks.scratch1;
  }

  get allBlocksBit(): number {
    return this.#all;
  }

  #init(initial: number): void {
    if (this.using) return;
    this.rules.push({ action: `-j MARK --set-xmark ${hex(initial)}/${hex(this.#all + this.#this)}` });
    this.using = true;
  }

  #positiveBit(): number {
    return this.#donePositive ? this.#this : this.#all;
  }

  #finishPositive(): void {
    if (!this.#donePositive) {
      this.#donePositive = true;
      return;
    }
    this.rules.push({ match: markIsClear(this.#this), action: markClear(this.#all) });
  }

  ports(
    protocol: number | undefined,
    splits: PortRange[][],
    namedSets: string[],
    side: Side,
    family: IpFamily,
  ) {
    this.#init(0);
    const bit = this.#positiveBit();
    for (const split of splits) {
      const proto = protocol === undefined ? '' : `-p ${protocolText(protocol)} `;
      this.rules.push({
        match: `${proto}-m multiport ${PORT_FLAG[side]} ${portsText(split)}`,
        action: markSet(bit),
      });
    }
    for (const id of namedSets) {
      const dir = `${SET_DIR[side]},${SET_DIR[side]}`;
      this.rules.push({
        match: `-m set --match-set ${policyIpsetName(id, family)} ${dir}`,
        action: markSet(bit),
      });
    }
    this.#finishPositive();
  }

  cidrs(nets: readonly string[], side: Side) {
    this.#init(0);
    const bit = this.#positiveBit();
    for (const net of nets) this.rules.push({ match: `${NET_FLAG[side]} ${net}`, action: markSet(bit) });
    this.#finishPositive();
  }

  negatedCidrs(nets: readonly string[], side: Side) {
    this.#init(this.#all);
    for (const net of nets)
      this.rules.push({ match: `${NET_FLAG[side]} ${net}`, action: markClear(this.#all) });
  }
}

function icmpText(
  icmp: { type: number; code: number | undefined },
  family: IpFamily,
  negated: boolean,
): string {
  const value = icmp.code === undefined ? `${icmp.type}` : `${icmp.type}/${icmp.code}`;
  const not = negated ? '! ' : '';
  return family === 4 ? `-m icmp ${not}--icmp-type ${value}` : `-m icmp6 ${not}--icmpv6-type ${value}`;
}

/** `CalculateRuleMatch`: positive criteria, then negated ones, in Felix's order. */
function ruleMatch(rule: ParsedRule, family: IpFamily): string[] {
  const m: string[] = [];
  const set = (id: string, dir: string, negated = false) =>
    `-m set ${negated ? '! ' : ''}--match-set ${policyIpsetName(id, family)} ${dir}`;
  if (rule.protocol !== undefined) m.push(`-p ${protocolText(rule.protocol)}`);
  for (const side of ['src', 'dst'] as const) {
    const s = rule[side];
    if (s.nets.length === 1) m.push(`${NET_FLAG[side]} ${s.nets[0]}`);
    for (const id of s.ipsets) m.push(set(id, SET_DIR[side]));
    if (s.ports.length > 0) m.push(`-m multiport ${PORT_FLAG[side]} ${portsText(s.ports)}`);
    for (const id of s.namedPortIpsets) m.push(set(id, `${SET_DIR[side]},${SET_DIR[side]}`));
  }
  if (rule.icmp) m.push(icmpText(rule.icmp, family, false));
  if (rule.notProtocol !== undefined) m.push(`! -p ${protocolText(rule.notProtocol)}`);
  for (const side of ['src', 'dst'] as const) {
    const s = rule[side];
    if (s.notNets.length === 1) m.push(`! ${NET_FLAG[side]} ${s.notNets[0]}`);
    for (const id of s.notIpsets) m.push(set(id, SET_DIR[side], true));
    for (const split of splitPortList(s.notPorts))
      m.push(`-m multiport ! ${PORT_FLAG[side]} ${portsText(split)}`);
    for (const id of s.notNamedPortIpsets) m.push(set(id, `${SET_DIR[side]},${SET_DIR[side]}`, true));
  }
  if (rule.notIcmp) m.push(icmpText(rule.notIcmp, family, true));
  return m;
}

function actionRules(rule: ParsedRule, match: string, opts: RenderOptions, cause?: DropCause): Rule[] {
  const { marks } = opts;
  const withMatch = (m: string, action: string): Rule => (m === '' ? { action } : { match: m, action });
  if (opts.stagedForm) {
    switch (rule.action) {
      case 'log':
        return [];
      case 'deny': {
        const bits = hex(marks.drop + marks.accept);
        return [
          withMatch(match, `-j MARK --set-xmark ${bits}/${bits}`),
          ...(cause ? [nflogRule(markIsSet(marks.drop), cause)] : []),
          { match: markIsSet(marks.drop), action: '-j RETURN' },
        ];
      }
      default:
        break;
    }
  }
  switch (rule.action) {
    case 'log':
      return [withMatch(match, `-j LOG --log-prefix "${opts.logPrefix ?? 'calico-packet'}: " --log-level 5`)];
    case 'allow':
      return [
        withMatch(match, markSet(marks.accept)),
        { match: markIsSet(marks.accept), action: '-j RETURN' },
      ];
    case 'pass':
      return [withMatch(match, markSet(marks.pass)), { match: markIsSet(marks.pass), action: '-j RETURN' }];
    case 'deny':
      return [
        withMatch(match, markSet(marks.drop)),
        ...(cause ? [nflogRule(markIsSet(marks.drop), cause)] : []),
        { match: markIsSet(marks.drop), action: '-j DROP' },
      ];
  }
}

/** One parsed rule as iptables rules for one family (`ProtoRuleToIptablesRules`); [] if it has none there. */
export function renderParsedRule(parsed: ParsedRule, opts: RenderOptions, cause?: DropCause): Rule[] {
  const filtered = ruleForFamily(parsed, opts.family);
  // A rule that needs data we do not have (Kubernetes Services) never matches: render nothing.
  if (!filtered || filtered.unsupported.length > 0) return [];
  return protocolVariants(filtered).flatMap((variant) => {
    const rule: ParsedRule = { ...variant, src: { ...variant.src }, dst: { ...variant.dst } };
    const blocks = new MatchBlocks(opts.marks);
    for (const side of ['src', 'dst'] as const) {
      const s = rule[side];
      const splits = splitPortList(s.ports);
      if (splits.length + s.namedPortIpsets.length > 1) {
        blocks.ports(rule.protocol, splits, s.namedPortIpsets, side, opts.family);
        s.ports = [];
        s.namedPortIpsets = [];
      }
    }
    for (const side of ['src', 'dst'] as const) {
      if (rule[side].nets.length > 1) {
        blocks.cidrs(rule[side].nets, side);
        rule[side].nets = [];
      }
    }
    for (const side of ['src', 'dst'] as const) {
      if (rule[side].nets.length + rule[side].notNets.length > 1) {
        blocks.negatedCidrs(rule[side].notNets, side);
        rule[side].notNets = [];
      }
    }
    const match = ruleMatch(rule, opts.family);
    if (blocks.using) match.push(markIsSet(blocks.allBlocksBit));
    return [...blocks.rules, ...actionRules(rule, match.join(' '), opts, cause)];
  });
}

/**
 * A rule list as one chain's rules (`ProtoRulesToIptablesRules`): trailing RETURNs dropped (they
 * change nothing at the end of a chain) and the chain's description on its first rule.
 */
export function renderRuleList(
  rules: readonly ParsedRule[],
  opts: RenderOptions,
  description: string,
  dropLog?: DropLogOwner,
): Rule[] {
  const out = rules.flatMap((r, ruleIndex) =>
    renderParsedRule(
      r,
      opts,
      opts.dropLogs && dropLog
        ? { verdict: 'rule', staged: dropLog.staged === true, ruleIndex, ...dropLog }
        : undefined,
    ),
  );
  while (out.length > 0 && out[out.length - 1]!.action === '-j RETURN') out.pop();
  if (out.length > 0)
    out[0] = { ...out[0]!, comment: out[0]!.comment ? `${description}; ${out[0]!.comment}` : description };
  return out;
}

const DIRECTIONS: readonly PolicyDirection[] = ['ingress', 'egress'];

/** The staged-evaluation form of the options: always with drop records. */
const stagedOptions = (opts: RenderOptions): RenderOptions => ({ ...opts, dropLogs: true, stagedForm: true });

/**
 * `cali-pi-<id>` and `cali-po-<id>` for one policy in one family (a compiled or active policy);
 * plus their staged forms `cali-spi-`/`cali-spo-` when some endpoint's staged view uses the
 * policy (`stagedView`). A staged policy has only the staged forms.
 */
export function policyChains(
  policy: Pick<CompiledPolicy, 'id' | 'key' | 'calicoName' | 'rules'> & { stagedView?: boolean | undefined },
  opts: RenderOptions,
): Chain[] {
  const where = policy.id.namespace ? `${policy.id.namespace}/${policy.calicoName}` : policy.calicoName;
  const staged = isStagedKind(policy.id.kind);
  const chains: Chain[] = staged
    ? []
    : DIRECTIONS.map((d) => ({
        name: policyChainName(d, policy.key),
        rules: renderRuleList(policy.rules[d], opts, `${policy.id.kind} ${where} ${d}`, {
          owner: policy.key,
          direction: d,
        }),
      }));
  if (staged || policy.stagedView) {
    const sopts = stagedOptions(opts);
    for (const d of DIRECTIONS)
      chains.push({
        name: stagedPolicyChainName(d, policy.key),
        rules: renderRuleList(
          policy.rules[d],
          sopts,
          `Staged evaluation of ${policy.id.kind} ${where} ${d}`,
          {
            owner: policy.key,
            direction: d,
            staged: true,
          },
        ),
      });
  }
  return chains;
}

/** `cali-pri-<name>` and `cali-pro-<name>` for one profile in one family (and staged forms, as policies). */
export function profileChains(
  profile: Pick<CompiledProfile, 'name' | 'rules'> & { stagedView?: boolean | undefined },
  opts: RenderOptions,
): Chain[] {
  const chains = DIRECTIONS.map((d) => ({
    name: profileChainName(d, profile.name),
    rules: renderRuleList(profile.rules[d], opts, `Profile ${profile.name} ${d}`, {
      owner: `pr/${profile.name}`,
      direction: d,
    }),
  }));
  if (profile.stagedView) {
    const sopts = stagedOptions(opts);
    for (const d of DIRECTIONS)
      chains.push({
        name: stagedProfileChainName(d, profile.name),
        rules: renderRuleList(profile.rules[d], sopts, `Staged evaluation of profile ${profile.name} ${d}`, {
          owner: `pr/${profile.name}`,
          direction: d,
          staged: true,
        }),
      });
  }
  return chains;
}

/** Every policy and profile chain the active set needs in one family, in a stable order. */
export function activePolicyChains(active: ActivePolicySet, opts: RenderOptions): Chain[] {
  return [
    ...active.policies.flatMap((p) => policyChains(p, opts)),
    ...active.profiles.flatMap((p) => profileChains(p, opts)),
  ];
}

/**
 * A chain as the `iptables-restore` lines the kernel layer writes for it, each rule carrying
 * its `cali:<hash>` comment — what `iptables-save` will show, for explain and for tests.
 */
export function chainRestoreLines(chain: Chain): string[] {
  const seen = new Map<string, number>();
  return chain.rules.map((r) => {
    const text = renderRule(r);
    const n = seen.get(text) ?? 0;
    seen.set(text, n + 1);
    return `-A ${chain.name} ${kernelRule(ruleHash(chain.name, text, n), text)}`;
  });
}
