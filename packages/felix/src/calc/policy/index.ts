/**
 * Network policy without I/O: compile policies, profiles and tiers; resolve an endpoint's tiers;
 * keep the selector IP sets up to date; render iptables chains; evaluate a flow. The dataplane
 * and `calico policy explain` share all of it.
 */
export {
  type DirectionVerdict,
  evaluateDirection,
  evaluateFlow,
  evaluateHostEndpointStage,
  evaluateHostFlow,
  type FailsafePort,
  type FailsafePorts,
  type FlowDecision,
  type FlowPacket,
  type FlowPeer,
  type FlowTraceStep,
  type FlowVerdict,
  type HostEndpointPeer,
  type HostEndpointStage,
  type HostFlowVerdict,
  type HostStageVerdict,
  type IpsetMembership,
  packetProtocolNumber,
  ruleMatchesPacket,
} from './flow-evaluator.ts';
export {
  type IcmpMatch,
  type IpsetSpec,
  type NamedPortProtocol,
  namedPortIpsetId,
  type ParsedRule,
  type ParsedRuleSide,
  type PortRange,
  parseRule,
  type RuleAction,
} from './parsed-rule.ts';
export {
  type ActivePolicySet,
  activePolicySet,
  type CompiledPolicy,
  type CompiledProfile,
  comparePolicies,
  compareTiers,
  compileGlobalNetworkPolicy,
  compileKubernetesNetworkPolicy,
  compileNetworkPolicy,
  compileProfile,
  effectiveLabels,
  endpointOwnLabels,
  endpointProfiles,
  globalNetworkPolicyId,
  kubernetesNetworkPolicyId,
  networkPolicyId,
  PolicyCatalog,
  type PolicyCatalogInput,
  type PolicyEndpoint,
  type ResolvedEndpointPolicy,
  type ResolvedHostEndpointPolicy,
  type ResolvedTier,
  type TierList,
  type TierView,
} from './policy-catalog.ts';
export {
  type EnforcedPolicyKind,
  lengthLimitedId,
  MAX_CHAIN_NAME_LENGTH,
  type PolicyDirection,
  type PolicyId,
  policyChainName,
  policyIdString,
  profileChainName,
} from './policy-id.ts';
export {
  endpointByIp,
  explainFlow,
  type PolicySnapshot,
  type PolicySnapshotInput,
  policySnapshot,
  type SnapshotEndpoint,
} from './policy-snapshot.ts';
export { type EndpointChainType, policyStageRules, resolvedPolicyStage, tierInfos } from './policy-stage.ts';
export {
  activePolicyChains,
  chainRestoreLines,
  type IpFamily,
  PORT_PROTOCOLS,
  policyChains,
  policyIpsetName,
  profileChains,
  type RenderOptions,
  renderParsedRule,
  renderRuleList,
  ruleForFamily,
  splitPortList,
} from './rule-render.ts';
export {
  type EndpointPort,
  endpointIndexItem,
  type IndexedItem,
  type IpsetDelta,
  ipsetTypeOf,
  memberFamily,
  networkSetIndexItem,
  SelectorIndex,
} from './selector-index.ts';
export {
  type EntitySelectors,
  entityRuleSelectorText,
  entitySelectors,
  globalNetworkPolicySelectorText,
  networkPolicySelectorText,
  prefixSelectorLabels,
} from './selector-scoping.ts';
