/**
 * Kubernetes objects as Calico sees them (libcalico-go lib/backend/k8s/conversion/conversion.go):
 * a networking.k8s.io/v1 NetworkPolicy becomes a Calico NetworkPolicy in tier `default` at order
 * 1000, a Namespace becomes the profile `kns.<ns>` (allow all, labels `pcns.*`), a
 * ServiceAccount the profile `ksa.<ns>.<sa>` (labels `pcsa.*` only). Pure functions: the calc
 * graph and `calico policy explain` both call them, so both see the same Calico policy.
 */
import { KINDS } from '../kinds.ts';
import type { ResourceOf } from './index.ts';
import { formatMaskedCidr, parseCidr } from './ip.ts';
import type { LabelSelector } from './kubernetes-network-policy.ts';
import type { PolicyType } from './policy.ts';
import type { EntityRule, Rule } from './policy-rule.ts';

/** Labels Calico puts on every workload endpoint of a pod (api/pkg/apis/projectcalico/v3). */
export const LABEL_NAMESPACE = 'projectcalico.org/namespace';
export const LABEL_ORCHESTRATOR = 'projectcalico.org/orchestrator';
export const LABEL_SERVICE_ACCOUNT = 'projectcalico.org/serviceaccount';
/** The label a namespace/service-account profile adds for the object's own name. */
export const LABEL_NAME = 'projectcalico.org/name';
/** Prefixes of labels inherited from a namespace's / service account's profile. */
export const NAMESPACE_LABEL_PREFIX = 'pcns.';
export const SERVICE_ACCOUNT_LABEL_PREFIX = 'pcsa.';
export const NAMESPACE_PROFILE_PREFIX = 'kns.';
export const SERVICE_ACCOUNT_PROFILE_PREFIX = 'ksa.';
/** Calico-side name of a converted Kubernetes policy: `knp.default.<name>`. */
export const K8S_NETWORK_POLICY_NAME_PREFIX = 'knp.default.';
/** Every converted Kubernetes policy sits at this order in tier `default`. */
export const K8S_NETWORK_POLICY_ORDER = 1000;

type K8sPolicySpec = ResourceOf<'KubernetesNetworkPolicy'>['spec'];
type K8sIngressRule = NonNullable<K8sPolicySpec['ingress']>[number];
type K8sPeer = NonNullable<K8sIngressRule['from']>[number];
type K8sPort = NonNullable<K8sIngressRule['ports']>[number];
type CalicoPort = NonNullable<EntityRule['ports']>[number];

/**
 * A Kubernetes LabelSelector as Calico selector text (`k8sSelectorToCalico`): matchLabels in key
 * order as `k == 'v'`, then matchExpressions in order; pod selectors start with
 * `projectcalico.org/orchestrator == 'k8s'` so that they only ever match pods. For a namespace
 * selector, absent means "the policy's namespace" (empty string) and present-but-empty means
 * every namespace (`all()`).
 */
export function k8sLabelSelectorToCalico(
  selector: LabelSelector | undefined,
  kind: 'pod' | 'namespace',
): string {
  const terms: string[] = kind === 'pod' ? [`${LABEL_ORCHESTRATOR} == 'k8s'`] : [];
  if (selector === undefined) return terms.join(' && ');
  const labels = selector.matchLabels ?? {};
  const expressions = selector.matchExpressions ?? [];
  if (kind === 'namespace' && Object.keys(labels).length === 0 && expressions.length === 0) return 'all()';
  // Go's sort.Strings orders by bytes; label keys are ASCII, where that is plain code-unit order.
  for (const key of Object.keys(labels).sort()) terms.push(`${key} == '${labels[key]}'`);
  for (const e of expressions) {
    const values = (e.values ?? []).join("', '");
    switch (e.operator) {
      case 'In':
        terms.push(`${e.key} in { '${values}' }`);
        break;
      case 'NotIn':
        terms.push(`${e.key} not in { '${values}' }`);
        break;
      case 'Exists':
        terms.push(`has(${e.key})`);
        break;
      case 'DoesNotExist':
        terms.push(`! has(${e.key})`);
        break;
    }
  }
  return terms.join(' && ');
}

/**
 * The fewest entries covering the same ports (`SimplifyPorts`): named ports first, as given,
 * then numeric ports merged into ascending ranges (80, 81, 82 → "80:82"). With at most one
 * numeric port the list is returned unchanged.
 */
export function simplifyPorts(ports: readonly CalicoPort[]): CalicoPort[] {
  if (ports.length <= 1) return [...ports];
  const named: CalicoPort[] = [];
  const numbers: number[] = [];
  for (const p of ports) {
    const range = portRange(p);
    if (!range) named.push(p);
    else for (let n = range[0]; n <= range[1]; n++) numbers.push(n);
  }
  if (numbers.length <= 1) return [...ports];
  numbers.sort((a, b) => a - b);
  const out = named;
  let i = 0;
  while (i < numbers.length) {
    const first = numbers[i]!;
    let last = first;
    i++;
    while (i < numbers.length && numbers[i]! <= last + 1) last = numbers[i++]!;
    out.push(first === last ? first : `${first}:${last}`);
  }
  return out;
}

function portRange(p: CalicoPort): [number, number] | undefined {
  if (typeof p === 'number') return [p, p];
  const m = /^(\d+)(?::(\d+))?$/.exec(p);
  if (!m) return undefined;
  const first = Number(m[1]);
  return [first, m[2] === undefined ? first : Number(m[2])];
}

/** One Kubernetes port entry as (protocol, Calico ports); undefined ports = every port. */
function k8sPortToCalico(port: K8sPort): { protocol: string; ports: CalicoPort[] | undefined } {
  // The schema defaults protocol to TCP, as the Kubernetes API does.
  const protocol = port.protocol;
  if (port.port === undefined) return { protocol, ports: undefined };
  if (typeof port.port === 'number' && port.endPort !== undefined) {
    return { protocol, ports: [`${port.port}:${port.endPort}`] };
  }
  return { protocol, ports: [port.port] };
}

/** A peer as the EntityRule fields it sets (`k8sPeerToCalicoFields`); undefined peer = anyone. */
function k8sPeerToEntity(peer: K8sPeer | undefined): EntityRule {
  if (peer === undefined) return {};
  if (peer.ipBlock) {
    const net = (cidr: string) => {
      const parsed = parseCidr(cidr);
      return parsed ? formatMaskedCidr(parsed) : cidr;
    };
    const entity: EntityRule = { nets: [net(peer.ipBlock.cidr)] };
    if (peer.ipBlock.except && peer.ipBlock.except.length > 0) entity.notNets = peer.ipBlock.except.map(net);
    return entity;
  }
  const entity: EntityRule = { selector: k8sLabelSelectorToCalico(peer.podSelector, 'pod') };
  const namespaceSelector = k8sLabelSelectorToCalico(peer.namespaceSelector, 'namespace');
  if (namespaceSelector !== '') entity.namespaceSelector = namespaceSelector;
  return entity;
}

/**
 * One Kubernetes rule as Calico rules (`k8sRuleToCalico`): ports grouped by protocol (a
 * protocol-only entry means all its ports and wins over specific ports of that protocol; an
 * entry without port means all TCP ports), one rule per protocol (in protocol-name order) × peer
 * (in the order given). No peers: any peer; no ports: any protocol and port.
 */
function k8sRuleToCalico(
  peers: readonly K8sPeer[] | undefined,
  ports: readonly K8sPort[] | undefined,
  direction: 'ingress' | 'egress',
): Rule[] {
  const byProtocol = new Map<string, CalicoPort[] | undefined>();
  if (!ports || ports.length === 0) {
    byProtocol.set('', undefined);
  } else {
    for (const port of ports) {
      const { protocol, ports: calicoPorts } = k8sPortToCalico(port);
      if (calicoPorts === undefined) byProtocol.set(protocol, undefined);
      else if (!byProtocol.has(protocol)) byProtocol.set(protocol, [...calicoPorts]);
      else byProtocol.get(protocol)?.push(...calicoPorts);
    }
  }
  const peerList: (K8sPeer | undefined)[] = peers && peers.length > 0 ? [...peers] : [undefined];
  const rules: Rule[] = [];
  for (const protocol of [...byProtocol.keys()].sort()) {
    const calicoPorts = byProtocol.get(protocol);
    const simplified = calicoPorts ? simplifyPorts(calicoPorts) : undefined;
    for (const peer of peerList) {
      const entity = k8sPeerToEntity(peer);
      const rule: Rule = { action: 'Allow' };
      if (protocol !== '') rule.protocol = protocol;
      if (direction === 'ingress') {
        if (Object.keys(entity).length > 0) rule.source = entity;
        if (simplified) rule.destination = { ports: simplified };
      } else {
        const destination: EntityRule = simplified ? { ports: simplified, ...entity } : entity;
        if (Object.keys(destination).length > 0) rule.destination = destination;
      }
      rules.push(rule);
    }
  }
  return rules;
}

/**
 * A Kubernetes NetworkPolicy as the Calico NetworkPolicy Felix enforces
 * (`K8sNetworkPolicyToCalico`). `types` are the policy's policyTypes (the stored object always
 * has them; Kubernetes defaults them to Ingress, plus Egress when an egress section exists), or
 * `[Ingress]` if the list is empty.
 */
export function kubernetesNetworkPolicyToCalico(
  policy: ResourceOf<'KubernetesNetworkPolicy'>,
): ResourceOf<'NetworkPolicy'> {
  const { spec, metadata } = policy;
  const namespace = metadata.namespace ?? 'default';
  const ingress = (spec.ingress ?? []).flatMap((r) => k8sRuleToCalico(r.from, r.ports, 'ingress'));
  const egress = (spec.egress ?? []).flatMap((r) => k8sRuleToCalico(r.to, r.ports, 'egress'));
  const types: PolicyType[] = [];
  if (spec.policyTypes.includes('Ingress')) types.push('Ingress');
  if (spec.policyTypes.includes('Egress')) types.push('Egress');
  if (types.length === 0) types.push('Ingress');
  const converted: ResourceOf<'NetworkPolicy'> = {
    apiVersion: KINDS.NetworkPolicy.apiVersion,
    kind: KINDS.NetworkPolicy.kind,
    metadata: {
      name: K8S_NETWORK_POLICY_NAME_PREFIX + metadata.name,
      namespace,
      ...(metadata.resourceVersion !== undefined ? { resourceVersion: metadata.resourceVersion } : {}),
      ...(metadata.creationTimestamp !== undefined ? { creationTimestamp: metadata.creationTimestamp } : {}),
    },
    spec: {
      tier: 'default',
      order: K8S_NETWORK_POLICY_ORDER,
      selector: k8sLabelSelectorToCalico(spec.podSelector, 'pod'),
      types,
    },
  };
  if (ingress.length > 0) converted.spec.ingress = ingress;
  if (egress.length > 0) converted.spec.egress = egress;
  return converted;
}

/** True for a Calico policy name that came from a Kubernetes NetworkPolicy. */
export function isConvertedKubernetesPolicyName(name: string): boolean {
  return name.startsWith(K8S_NETWORK_POLICY_NAME_PREFIX);
}

/**
 * The profile Calico makes for a namespace (`NamespaceToProfile`): allow everything in both
 * directions, and give its endpoints the namespace's labels as `pcns.<key>` plus
 * `pcns.projectcalico.org/name=<ns>`.
 */
export function namespaceProfile(namespace: string, labels: Readonly<Record<string, string>> = {}) {
  const labelsToApply: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) labelsToApply[NAMESPACE_LABEL_PREFIX + k] = v;
  labelsToApply[NAMESPACE_LABEL_PREFIX + LABEL_NAME] = namespace;
  const profile: ResourceOf<'Profile'> = {
    apiVersion: KINDS.Profile.apiVersion,
    kind: KINDS.Profile.kind,
    metadata: { name: NAMESPACE_PROFILE_PREFIX + namespace },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply },
  };
  return profile;
}

/**
 * The profile Calico makes for a service account (`ServiceAccountToProfile`): no rules, only
 * labels `pcsa.<key>` plus `pcsa.projectcalico.org/name=<sa>`.
 */
export function serviceAccountProfile(
  namespace: string,
  serviceAccount: string,
  labels: Readonly<Record<string, string>> = {},
) {
  const labelsToApply: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) labelsToApply[SERVICE_ACCOUNT_LABEL_PREFIX + k] = v;
  labelsToApply[SERVICE_ACCOUNT_LABEL_PREFIX + LABEL_NAME] = serviceAccount;
  const profile: ResourceOf<'Profile'> = {
    apiVersion: KINDS.Profile.apiVersion,
    kind: KINDS.Profile.kind,
    metadata: { name: `${SERVICE_ACCOUNT_PROFILE_PREFIX}${namespace}.${serviceAccount}` },
    spec: { labelsToApply },
  };
  return profile;
}
