/**
 * How a v3 policy's selectors become the selectors Felix evaluates (libcalico-go
 * updateprocessors networkpolicyprocessor.go, globalnetworkpolicyprocessor.go, rules.go, and
 * felix/calc/rule_scanner.go; policy-semantics §2.3, §2.6). The composition is done on selector
 * text exactly as Calico does it and then parsed, so the canonical text, and hence every ipset
 * name derived from it, is the one Calico computes for the same policy.
 */
import {
  type EntityRule,
  formatSelectorNode,
  LABEL_NAMESPACE,
  LABEL_SERVICE_ACCOUNT,
  NAMESPACE_LABEL_PREFIX,
  parseSelector,
  SERVICE_ACCOUNT_LABEL_PREFIX,
  type Selector,
  type SelectorNode,
} from '@calico-ts/datastore';

function prefixNode(node: SelectorNode, prefix: string): SelectorNode {
  switch (node.kind) {
    case 'all':
    case 'global':
      return node;
    case 'not':
      return { kind: 'not', operand: prefixNode(node.operand, prefix) };
    case 'and':
    case 'or':
      return { kind: node.kind, operands: node.operands.map((o) => prefixNode(o, prefix)) };
    default:
      return { ...node, label: prefix + node.label };
  }
}

/**
 * The selector with every label name prefixed (`parseSelectorAttachPrefix`): `k == 'v'` with
 * `pcns.` becomes `pcns.k == "v"`. Canonical text; "" when the text does not parse.
 */
export function prefixSelectorLabels(text: string, prefix: string): string {
  try {
    return formatSelectorNode(prefixNode(parseSelector(text).root, prefix));
  } catch {
    return '';
  }
}

/** `prefixAndAppendSelector`: `(<current>) && <prefixed new>`. */
function prefixAndAppend(current: string, added: string | undefined, prefix: string): string {
  if (!added) return current;
  const prefixed = prefixSelectorLabels(added, prefix);
  if (prefixed === '') return current;
  return current !== '' ? `(${current}) && ${prefixed}` : prefixed;
}

// Calico rewrites all()/global() on the selector text (strings.Replace), so we do too.
const replaceAllCalls = (text: string, by: string) => text.split('all()').join(by);
const HAS_NAMESPACE = `has(${LABEL_NAMESPACE})`;

/** Which endpoints a NetworkPolicy in `namespace` applies to. */
export function networkPolicySelectorText(
  namespace: string,
  spec: { selector?: string | undefined; serviceAccountSelector?: string | undefined },
): string {
  const nsClause = `${LABEL_NAMESPACE} == '${namespace}'`;
  const own = spec.selector ?? '';
  const selector = own === '' ? nsClause : `(${own}) && ${nsClause}`;
  return prefixAndAppend(selector, spec.serviceAccountSelector, SERVICE_ACCOUNT_LABEL_PREFIX);
}

/**
 * Which endpoints a GlobalNetworkPolicy applies to: its selector, ANDed with the namespace
 * selector over `pcns.` labels (then `all()` means "any namespaced endpoint") and the service
 * account selector over `pcsa.` labels (then `all()` means "any endpoint with a service account").
 */
export function globalNetworkPolicySelectorText(spec: {
  selector?: string | undefined;
  namespaceSelector?: string | undefined;
  serviceAccountSelector?: string | undefined;
}): string {
  let selector = spec.selector ?? '';
  if (spec.namespaceSelector) {
    selector = prefixAndAppend(selector, spec.namespaceSelector, NAMESPACE_LABEL_PREFIX);
    selector = replaceAllCalls(selector, HAS_NAMESPACE);
  }
  if (spec.serviceAccountSelector) {
    selector = prefixAndAppend(selector, spec.serviceAccountSelector, SERVICE_ACCOUNT_LABEL_PREFIX);
    selector = replaceAllCalls(selector, `has(${LABEL_SERVICE_ACCOUNT})`);
  }
  return selector;
}

/** `parseServiceAccounts`: the pcsa.-prefixed selector AND `serviceaccount in {names}`. */
function serviceAccountSelectorText(match: NonNullable<EntityRule['serviceAccounts']>): string {
  const prefixed = match.selector ? prefixSelectorLabels(match.selector, SERVICE_ACCOUNT_LABEL_PREFIX) : '';
  if (!match.names || match.names.length === 0) return prefixed;
  const names = parseSelector(`${LABEL_SERVICE_ACCOUNT} in { '${match.names.join("', '")}' }`).toString();
  return prefixed !== '' ? `(${prefixed}) && (${names})` : names;
}

/**
 * The one positive selector an entity rule puts on its side of the packet
 * (`GetEntityRuleSelector`). `policyNamespace` is the namespace of a NetworkPolicy, undefined
 * for GlobalNetworkPolicy and Profile rules. The namespace part is added as soon as any of
 * selector, serviceAccounts, notSelector or namespaceSelector is used — so in a NetworkPolicy
 * `notSelector` alone means "my namespace, except …" (policy-semantics §2.6 rule 3).
 */
export function entityRuleSelectorText(entity: EntityRule, policyNamespace: string | undefined): string {
  let nsSelector = '';
  if (entity.namespaceSelector) {
    nsSelector = prefixSelectorLabels(entity.namespaceSelector, NAMESPACE_LABEL_PREFIX);
    nsSelector = replaceAllCalls(nsSelector, HAS_NAMESPACE);
    nsSelector = nsSelector.split('global()').join(`!${HAS_NAMESPACE}`);
  } else if (policyNamespace) {
    nsSelector = `${LABEL_NAMESPACE} == '${policyNamespace}'`;
  }
  const parts: string[] = [];
  if (entity.serviceAccounts) {
    const sa = serviceAccountSelectorText(entity.serviceAccounts);
    if (sa !== '') parts.push(sa);
  }
  if (entity.selector) parts.push(entity.selector);
  let selector = parts.length === 0 ? '' : parts.length === 1 ? parts[0]! : `(${parts.join(') && (')})`;
  if (nsSelector !== '' && (selector !== '' || entity.notSelector || entity.namespaceSelector)) {
    selector = selector !== '' ? `(${nsSelector}) && (${selector})` : nsSelector;
  }
  return selector;
}

export interface EntitySelectors {
  /** The packet's address must belong to an endpoint/network set matching this. */
  positive: Selector | undefined;
  /** The packet's address must not belong to any endpoint/network set matching this. */
  negative: Selector | undefined;
}

/**
 * The selectors a rule side is rendered with (`extractSelectors` + `combineMatchesIfPossible`):
 * when there is a positive selector the negative one is folded into it (the rule only matches
 * known endpoints anyway); without one, `notSelector` stays a separate negative match that also
 * matches addresses outside the cluster.
 */
export function entitySelectors(
  entity: EntityRule | undefined,
  policyNamespace: string | undefined,
): EntitySelectors {
  if (!entity) return { positive: undefined, negative: undefined };
  const positive = entityRuleSelectorText(entity, policyNamespace);
  const negative = entity.notSelector ?? '';
  if (positive !== '' && negative !== '') {
    return { positive: parseSelector(`(${positive}) && (!(${negative}))`), negative: undefined };
  }
  return {
    positive: positive !== '' ? parseSelector(positive) : undefined,
    negative: negative !== '' ? parseSelector(negative) : undefined,
  };
}
