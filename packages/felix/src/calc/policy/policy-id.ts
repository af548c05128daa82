/**
 * Identity of policies and profiles as Felix names them: `PolicyID.ID()` (`<kind>/<ns>/<name>`,
 * felix/types/policy_id.go) and the iptables chain names derived from it with
 * `GetLengthLimitedID` (felix/hashutils), so chain names stay within iptables' 28 characters.
 */
import { createHash } from 'node:crypto';

/** The policy kinds Felix enforces. */
export type EnforcedPolicyKind = 'NetworkPolicy' | 'GlobalNetworkPolicy' | 'KubernetesNetworkPolicy';

/**
 * Staged kinds are never enforced (policy-semantics §2.10): Felix evaluates them beside the
 * enforced policies and only records what they would deny.
 */
export type StagedPolicyKind =
  | 'StagedNetworkPolicy'
  | 'StagedGlobalNetworkPolicy'
  | 'StagedKubernetesNetworkPolicy';

export type PolicyKind = EnforcedPolicyKind | StagedPolicyKind;

/** The enforced kind a staged kind stands in for (same namespace and name). */
export const ENFORCED_KIND_OF: Readonly<Record<StagedPolicyKind, EnforcedPolicyKind>> = {
  StagedNetworkPolicy: 'NetworkPolicy',
  StagedGlobalNetworkPolicy: 'GlobalNetworkPolicy',
  StagedKubernetesNetworkPolicy: 'KubernetesNetworkPolicy',
};

export function isStagedKind(kind: PolicyKind): kind is StagedPolicyKind {
  return kind in ENFORCED_KIND_OF;
}

export interface PolicyId {
  kind: PolicyKind;
  /** Undefined for GlobalNetworkPolicy. */
  namespace: string | undefined;
  /** For KubernetesNetworkPolicy the Kubernetes object's name (its Calico name is `knp.default.<name>`). */
  name: string;
}

const KIND_SHORT_NAMES: Readonly<Record<PolicyKind, string>> = {
  NetworkPolicy: 'np',
  GlobalNetworkPolicy: 'gnp',
  KubernetesNetworkPolicy: 'knp',
  StagedNetworkPolicy: 'snp',
  StagedGlobalNetworkPolicy: 'sgnp',
  StagedKubernetesNetworkPolicy: 'sknp',
};

/**
 * `np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>` (staged: `snp/…`, `sgnp/…`, `sknp/…`): the
 * key policies are known by everywhere.
 */
export function policyIdString(id: PolicyId): string {
  const kind = KIND_SHORT_NAMES[id.kind];
  return id.namespace ? `${kind}/${id.namespace}/${id.name}` : `${kind}/${id.name}`;
}

/** iptables refuses longer chain names (iptables/table.go MaxChainNameLength). */
export const MAX_CHAIN_NAME_LENGTH = 28;

/**
 * `prefix + suffix` when it fits in `maxLength`, else `prefix + "_" + ` the base64url SHA-256 of
 * the suffix cut to fit (also when it fits exactly but starts with "_", so a shortened name can
 * never equal a literal one).
 */
export function lengthLimitedId(prefix: string, suffix: string, maxLength = MAX_CHAIN_NAME_LENGTH): string {
  const s = suffix === '' ? '_' : suffix;
  const total = prefix.length + s.length;
  if (total > maxLength || (total === maxLength && s.startsWith('_'))) {
    const hash = createHash('sha256').update(s).digest('base64url');
    return `${prefix}_${hash.slice(0, maxLength - 1 - prefix.length)}`;
  }
  return prefix + s;
}

export type PolicyDirection = 'ingress' | 'egress';

/** `cali-pi-<id>` (ingress) / `cali-po-<id>` (egress) for a policy key from policyIdString. */
export function policyChainName(direction: PolicyDirection, policyKey: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-pi-' : 'cali-po-', policyKey);
}

/** `cali-pri-<profile>` (ingress) / `cali-pro-<profile>` (egress). */
export function profileChainName(direction: PolicyDirection, profileName: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-pri-' : 'cali-pro-', profileName);
}

/**
 * The staged-evaluation form of a policy's chains (`cali-spi-`/`cali-spo-`), for an enforced
 * policy as well as a staged one: a Deny there records and returns instead of dropping.
 */
export function stagedPolicyChainName(direction: PolicyDirection, policyKey: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-spi-' : 'cali-spo-', policyKey);
}

/** The staged-evaluation form of a profile's chains (`cali-spri-`/`cali-spro-`). */
export function stagedProfileChainName(direction: PolicyDirection, profileName: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-spri-' : 'cali-spro-', profileName);
}
