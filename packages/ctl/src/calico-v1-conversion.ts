/**
 * calicoctl v1 resources (Calico v2.x: `apiVersion: v1`, lower camel case kinds) converted to the
 * projectcalico.org/v3 resources they became, following the facts of libcalico-go's upgrade
 * converters (lib/upgrade/converters): names normalised to valid v3 names (with a hash qualifier
 * where the name had to change), `policy` → GlobalNetworkPolicy, tags → selectors and
 * labelsToApply, ipPool ipip → ipipMode, scoped bgpPeers named from their peer IP. Pure: a parsed
 * object in, a validated v3 resource or every problem (field path, value, what was expected) out.
 */
import { createHash } from 'node:crypto';
import { workloadEndpointName } from '@calico-ts/cni';
import {
  type AnyResource,
  formatIp,
  formatMaskedCidr,
  type KindName,
  type Metadata,
  type ParsedCidr,
  parseCidr,
  parseCidrOrIp,
  parseIp,
  type ValidationIssue,
  validateResource,
} from '@calico-ts/datastore';

/** The v1 kinds calicoctl v1.x read, each with the v3 kind it converts to. */
export const CALICO_V1_KINDS = {
  node: 'Node',
  bgpPeer: 'BGPPeer',
  hostEndpoint: 'HostEndpoint',
  ipPool: 'IPPool',
  policy: 'GlobalNetworkPolicy',
  profile: 'Profile',
  workloadEndpoint: 'WorkloadEndpoint',
} as const satisfies Record<string, KindName>;

export type CalicoV1Kind = keyof typeof CALICO_V1_KINDS;

export type V1ConversionResult =
  | { ok: true; resource: AnyResource }
  | { ok: false; subject: string; issues: ValidationIssue[] };

/**
 * A v1 calicoctl document: `apiVersion: v1` with a lower-case kind. Kubernetes' core v1 kinds
 * (Namespace, List, …) are upper camel case, so the two never collide.
 */
export function isCalicoV1Document(value: unknown): value is Record<string, unknown> {
  return isRecord(value) && value['apiVersion'] === 'v1' && typeof value['kind'] === 'string'
    ? /^[a-z]/.test(value['kind'])
    : false;
}

/** Converts one v1 object (as parsed from YAML or JSON) to its validated v3 resource. */
export function convertV1Resource(object: Record<string, unknown>): V1ConversionResult {
  const kind = object['kind'];
  const reader = new V1Reader(object);
  const name = reader.optionalString('metadata.name') ?? reader.optionalString('metadata.cidr');
  const subject = `v1 ${String(kind)}${name === undefined ? '' : ` ${name}`}`;
  if (!isV1Kind(kind)) {
    return {
      ok: false,
      subject: '',
      issues: [
        {
          path: 'kind',
          value: kind,
          message: `unknown v1 kind; expected one of ${Object.keys(CALICO_V1_KINDS).join(', ')}`,
        },
      ],
    };
  }
  const converted = CONVERTERS[kind](reader);
  if (reader.issues.length > 0 || converted === undefined) {
    return { ok: false, subject, issues: reader.issues };
  }
  return validated(CALICO_V1_KINDS[kind], converted, subject);
}

function isV1Kind(kind: unknown): kind is CalicoV1Kind {
  return typeof kind === 'string' && Object.hasOwn(CALICO_V1_KINDS, kind);
}

function validated(kind: KindName, input: V3Input, subject: string): V1ConversionResult {
  const result = validateResource(kind, input);
  if (!result.ok) {
    return {
      ok: false,
      subject,
      issues: result.issues.map((issue) => ({ ...issue, message: `converted ${kind}: ${issue.message}` })),
    };
  }
  return { ok: true, resource: result.value };
}

// ---------------------------------------------------------------------------------------------
// Names

/**
 * libcalico-go's name normalisation: lower case, `/` → `.`, other characters outside
 * [-.a-z0-9] → `-`, any run of [-.] holding a dot → one `.`, leading and trailing [-.] removed.
 */
export function normalizeV1Name(v1Name: string): string {
  return v1Name
    .toLowerCase()
    .replaceAll('/', '.')
    .replace(/[^-.a-z0-9]+/g, '-')
    .replace(/[-.]*\.[-.]*/g, '.')
    .replace(/^[-.]+|[-.]+$/g, '');
}

/** A changed name carries the first 8 hex digits of SHA-1 of the original, so two never merge. */
function qualified(original: string, converted: string): string {
  if (original === converted) return original;
  const hash = createHash('sha1').update(original).digest('hex').slice(0, 8);
  return `${converted}-${hash}`;
}

/** A v1 name as a valid v3 name (dots allowed). */
export function convertV1Name(v1Name: string): string {
  return qualified(v1Name, normalizeV1Name(v1Name));
}

/** A v1 name as a valid v3 name without dots (policies: a dot would start a tier prefix). */
export function convertV1NameNoDots(v1Name: string): string {
  return qualified(v1Name, normalizeV1Name(v1Name).replaceAll('.', '-'));
}

/** Node names are normalised without a qualifier: other resources refer to them by name. */
export function convertV1NodeName(v1Name: string): string {
  return normalizeV1Name(v1Name);
}

/** v1 namespace profiles `k8s_ns.<ns>` are `kns.<ns>` in v3. */
export function convertV1ProfileName(v1Name: string): string {
  return convertV1Name(v1Name.startsWith('k8s_ns.') ? `kns.${v1Name.slice('k8s_ns.'.length)}` : v1Name);
}

/** IPv4 `1-2-3-4`; IPv6 as eight fully expanded 4-digit groups joined with `-`. */
function ipToName(family: 4 | 6, value: bigint): string {
  if (family === 4) return formatIp(4, value).replaceAll('.', '-');
  const hex = value.toString(16).padStart(32, '0');
  return Array.from({ length: 8 }, (_, i) => hex.slice(i * 4, i * 4 + 4)).join('-');
}

/** An IP pool's v3 name is its CIDR with `.`, `:` and `/` as `-` (`10.1.0.0/16` → `10-1-0-0-16`). */
function cidrToName(cidr: string): string {
  return cidr.replace(/[.:/]/g, '-').replace(/^-+|-+$/g, '');
}

// ---------------------------------------------------------------------------------------------
// Reading v1 fields: each accessor records what is wrong (path, value, what was expected).

class V1Reader {
  readonly issues: ValidationIssue[] = [];
  private readonly root: Record<string, unknown>;
  constructor(root: Record<string, unknown>) {
    this.root = root;
  }

  /** The value at a path such as `spec.ingress[0].source.nets[1]`, or undefined. */
  value(path: string): unknown {
    let cur: unknown = this.root;
    for (const part of path.split(/\.|(?=\[)/)) {
      const index = /^\[(\d+)\]$/.exec(part);
      if (index) cur = Array.isArray(cur) ? cur[Number(index[1])] : undefined;
      else cur = isRecord(cur) ? cur[part] : undefined;
    }
    return cur;
  }

  fail(path: string, value: unknown, message: string): undefined {
    this.issues.push({ path, value, message });
    return undefined;
  }

  optionalString(path: string): string | undefined {
    const v = this.value(path);
    return typeof v === 'string' ? v : undefined;
  }

  string(path: string, expected = 'expected a string'): string | undefined {
    const v = this.value(path);
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : this.fail(path, v, expected);
  }

  requiredString(path: string, expected: string): string | undefined {
    const v = this.value(path);
    return typeof v === 'string' && v !== '' ? v : this.fail(path, v, expected);
  }

  boolean(path: string): boolean | undefined {
    const v = this.value(path);
    if (v === undefined || v === null) return undefined;
    return typeof v === 'boolean' ? v : this.fail(path, v, 'expected true or false');
  }

  number(path: string): number | undefined {
    const v = this.value(path);
    if (v === undefined || v === null) return undefined;
    return typeof v === 'number' ? v : this.fail(path, v, 'expected a number');
  }

  stringMap(path: string): Record<string, string> | undefined {
    const v = this.value(path);
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string')) {
      return this.fail(path, v, 'expected a map of strings to strings');
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  }

  list(path: string): unknown[] | undefined {
    const v = this.value(path);
    if (v === undefined || v === null) return undefined;
    return Array.isArray(v) ? v : this.fail(path, v, 'expected a list');
  }

  stringList(path: string): string[] | undefined {
    const items = this.list(path);
    if (items === undefined) return undefined;
    const out: string[] = [];
    items.forEach((item, i) => {
      if (typeof item === 'string') out.push(item);
      else this.fail(`${path}[${i}]`, item, 'expected a string');
    });
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared field conversions

const V1_PROTOCOLS: Record<string, string> = {
  tcp: 'TCP',
  udp: 'UDP',
  icmp: 'ICMP',
  icmpv6: 'ICMPv6',
  sctp: 'SCTP',
  udplite: 'UDPLite',
};

function protocol(r: V1Reader, path: string): string | number | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const named = V1_PROTOCOLS[v.toLowerCase()];
    if (named) return named;
    if (/^\d+$/.test(v)) return Number(v);
  }
  return r.fail(path, v, `expected a protocol number or one of ${Object.keys(V1_PROTOCOLS).join(', ')}`);
}

/** A CIDR (or bare address as its full-length network) with host bits cleared, as v1 stored it. */
function maskedNet(r: V1Reader, path: string, value: unknown): string | undefined {
  const cidr = typeof value === 'string' ? parseCidrOrIp(value) : undefined;
  return cidr ? formatMaskedCidr(cidr) : r.fail(path, value, 'expected a CIDR such as 10.0.0.0/8');
}

const V1_ACTIONS: Record<string, string> = {
  allow: 'Allow',
  deny: 'Deny',
  log: 'Log',
  pass: 'Pass',
  'next-tier': 'Pass',
};

type V3Rule = Record<string, unknown>;

/** `net` and `nets` (and their `not` forms) merge into v3's lists; a tag becomes `<tag> == ''`. */
function entity(r: V1Reader, path: string): Record<string, unknown> | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v))
    return r.fail(path, v, 'expected a map (tag, net, nets, selector, ports and their not forms)');
  const out: Record<string, unknown> = {};
  for (const [netField, netsField, v3Field] of [
    ['net', 'nets', 'nets'],
    ['notNet', 'notNets', 'notNets'],
  ] as const) {
    const nets: string[] = [];
    const single = v[netField];
    if (single !== undefined && single !== null) {
      const n = maskedNet(r, `${path}.${netField}`, single);
      if (n) nets.push(n);
    }
    (r.list(`${path}.${netsField}`) ?? []).forEach((item, i) => {
      const n = maskedNet(r, `${path}.${netsField}[${i}]`, item);
      if (n) nets.push(n);
    });
    if (nets.length > 0) out[v3Field] = nets;
  }
  for (const [selField, tagField] of [
    ['selector', 'tag'],
    ['notSelector', 'notTag'],
  ] as const) {
    const selector = r.string(`${path}.${selField}`) ?? '';
    const tag = r.string(`${path}.${tagField}`) ?? '';
    const merged = tag === '' ? selector : selector === '' ? `${tag} == ''` : `(${selector}) && ${tag} == ''`;
    if (merged !== '') out[selField] = merged;
  }
  for (const portsField of ['ports', 'notPorts'] as const) {
    const ports = r.list(`${path}.${portsField}`);
    if (ports !== undefined) out[portsField] = ports;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function icmp(r: V1Reader, path: string): Record<string, number> | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) return r.fail(path, v, 'expected a map with type and code');
  const out: Record<string, number> = {};
  const type = r.number(`${path}.type`);
  const code = r.number(`${path}.code`);
  if (type !== undefined) out['type'] = type;
  if (code !== undefined) out['code'] = code;
  return out;
}

function rule(r: V1Reader, path: string): V3Rule {
  const actionText = r.string(`${path}.action`) ?? 'allow';
  const action = V1_ACTIONS[actionText.toLowerCase()];
  if (action === undefined) {
    r.fail(`${path}.action`, actionText, 'expected allow, deny, log or pass');
  }
  const out: V3Rule = { action: action ?? actionText };
  const ipVersion = r.number(`${path}.ipVersion`);
  if (ipVersion !== undefined) out['ipVersion'] = ipVersion;
  const fields: [string, unknown][] = [
    ['protocol', protocol(r, `${path}.protocol`)],
    ['notProtocol', protocol(r, `${path}.notProtocol`)],
    ['icmp', icmp(r, `${path}.icmp`)],
    ['notICMP', icmp(r, `${path}.notICMP`)],
    ['source', entity(r, `${path}.source`)],
    ['destination', entity(r, `${path}.destination`)],
  ];
  for (const [field, value] of fields) if (value !== undefined) out[field] = value;
  return out;
}

function rules(r: V1Reader, path: string): V3Rule[] | undefined {
  const items = r.list(path);
  return items?.map((_, i) => rule(r, `${path}[${i}]`));
}

function endpointPorts(r: V1Reader, path: string): Record<string, unknown>[] | undefined {
  return r.list(path)?.map((_, i) => {
    const p = `${path}[${i}]`;
    return {
      name: r.string(`${p}.name`),
      protocol: protocol(r, `${p}.protocol`),
      port: r.number(`${p}.port`),
    };
  });
}

/** v1 put a pod's namespace in `calico/k8s_ns`; v3 calls that label projectcalico.org/namespace. */
function convertLabels(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  if (labels === undefined) return undefined;
  const { 'calico/k8s_ns': namespace, ...rest } = labels;
  return namespace === undefined ? rest : { ...rest, 'projectcalico.org/namespace': namespace };
}

function metadata(name: string, extra: Partial<Metadata> = {}): Metadata {
  const out: Metadata = { name };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) Object.assign(out, { [k]: v });
  return out;
}

/** A node BGP address keeps its host part and mask (`10.0.0.1/24`); a bare IP gets a full mask. */
function interfaceAddress(r: V1Reader, path: string, family: 4 | 6): string | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  const parsed: ParsedCidr | undefined = typeof v === 'string' ? parseCidrOrIp(v) : undefined;
  if (!parsed || parsed.family !== family) {
    return r.fail(path, v, `expected an IPv${family} address, optionally with a prefix length`);
  }
  return `${formatIp(family, parsed.address)}/${parsed.prefixLength}`;
}

// ---------------------------------------------------------------------------------------------
// Per kind

/** What a converter builds; validateResource checks it against the v3 kind and fills defaults. */
interface V3Input {
  metadata: Metadata;
  spec: Record<string, unknown>;
}

type Converter = (r: V1Reader) => V3Input | undefined;

const CONVERTERS: Record<CalicoV1Kind, Converter> = {
  policy(r) {
    const name = r.requiredString('metadata.name', 'expected the policy name');
    const tier = convertV1NameNoDots(r.string('metadata.tier') ?? '') || 'default';
    const ingress = rules(r, 'spec.ingress');
    const egress = rules(r, 'spec.egress');
    const doNotTrack = r.boolean('spec.doNotTrack') ?? false;
    const preDNAT = r.boolean('spec.preDNAT') ?? false;
    const types = policyTypes(
      r,
      ingress !== undefined && ingress.length > 0,
      egress !== undefined && egress.length > 0,
    );
    if (name === undefined) return undefined;
    const spec: Record<string, unknown> = { tier, types };
    const order = r.number('spec.order');
    if (order !== undefined) spec['order'] = order;
    const selector = r.string('spec.selector');
    if (selector !== undefined && selector !== '') spec['selector'] = selector;
    if (ingress !== undefined) spec['ingress'] = ingress;
    if (egress !== undefined) spec['egress'] = egress;
    if (doNotTrack) spec['doNotTrack'] = true;
    if (preDNAT) spec['preDNAT'] = true;
    // Untracked and pre-DNAT policy applies to forwarded traffic by nature.
    if ((r.boolean('spec.applyOnForward') ?? false) || doNotTrack || preDNAT) spec['applyOnForward'] = true;
    return {
      metadata: metadata(`${tier}.${convertV1NameNoDots(name)}`, {
        labels: { 'projectcalico.org/tier': tier },
        annotations: r.stringMap('metadata.annotations'),
      }),
      spec,
    };
  },

  profile(r) {
    const name = r.requiredString('metadata.name', 'expected the profile name');
    const labels = r.stringMap('metadata.labels');
    const tags = r.stringList('metadata.tags') ?? [];
    const labelsToApply: Record<string, string> = { ...labels };
    tags.forEach((tag, i) => {
      if (Object.hasOwn(labelsToApply, tag)) {
        r.fail(
          `metadata.tags[${i}]`,
          tag,
          `a label has the same key; tags become labels (${tag}: ""), so rename one`,
        );
      }
      labelsToApply[tag] = '';
    });
    const ingress = rules(r, 'spec.ingress');
    const egress = rules(r, 'spec.egress');
    if (name === undefined) return undefined;
    const spec: Record<string, unknown> = {};
    if (Object.keys(labelsToApply).length > 0) spec['labelsToApply'] = labelsToApply;
    if (ingress !== undefined) spec['ingress'] = ingress;
    if (egress !== undefined) spec['egress'] = egress;
    return { metadata: metadata(convertV1ProfileName(name)), spec };
  },

  ipPool(r) {
    const cidrText = r.value('metadata.cidr');
    const cidr = typeof cidrText === 'string' ? parseCidr(cidrText) : undefined;
    if (!cidr) r.fail('metadata.cidr', cidrText, 'expected a CIDR such as 10.1.0.0/16');
    const ipipEnabled = r.boolean('spec.ipip.enabled') ?? false;
    const mode = r.string('spec.ipip.mode') ?? '';
    let ipipMode = 'Never';
    if (mode !== '' && mode !== 'always' && mode !== 'cross-subnet') {
      r.fail('spec.ipip.mode', mode, 'expected always or cross-subnet');
    } else if (ipipEnabled) {
      ipipMode = mode === 'cross-subnet' ? 'CrossSubnet' : 'Always';
    }
    const natOutgoing = r.boolean('spec.nat-outgoing') ?? false;
    const disabled = r.boolean('spec.disabled') ?? false;
    if (!cidr) return undefined;
    const masked = formatMaskedCidr(cidr);
    return {
      metadata: metadata(cidrToName(masked)),
      spec: {
        cidr: masked,
        ipipMode,
        vxlanMode: 'Never',
        natOutgoing,
        disabled,
        blockSize: cidr.family === 4 ? 26 : 122,
        nodeSelector: 'all()',
      },
    };
  },

  bgpPeer(r) {
    const scope = r.value('metadata.scope');
    const node = r.string('metadata.node') ?? '';
    const peerText = r.value('metadata.peerIP');
    const peer = typeof peerText === 'string' ? parseIp(peerText) : undefined;
    if (!peer) r.fail('metadata.peerIP', peerText, 'expected the peer IP address');
    if (scope === 'global') {
      if (node !== '') r.fail('metadata.node', node, 'expected no node for scope global');
    } else if (scope === 'node') {
      if (node === '')
        r.fail('metadata.node', r.value('metadata.node'), 'expected the node name for scope node');
    } else {
      r.fail('metadata.scope', scope, 'expected global or node');
    }
    const asNumber = r.value('spec.asNumber');
    if (!peer || r.issues.length > 0) return undefined;
    const ipName = ipToName(peer.family, peer.value);
    const spec: Record<string, unknown> = { peerIP: formatIp(peer.family, peer.value) };
    if (asNumber !== undefined && asNumber !== null) spec['asNumber'] = asNumber;
    if (scope === 'node') {
      const nodeName = convertV1NodeName(node);
      spec['node'] = nodeName;
      return { metadata: metadata(`${nodeName}.${ipName}`), spec };
    }
    return { metadata: metadata(ipName), spec };
  },

  node(r) {
    const name = r.requiredString('metadata.name', 'expected the node name');
    const spec: Record<string, unknown> = {};
    const bgp = r.value('spec.bgp');
    if (bgp !== undefined && bgp !== null) {
      const ipv4Address = interfaceAddress(r, 'spec.bgp.ipv4Address', 4);
      const ipv6Address = interfaceAddress(r, 'spec.bgp.ipv6Address', 6);
      if (r.value('spec.bgp.ipv4Address') == null && r.value('spec.bgp.ipv6Address') == null) {
        r.fail('spec.bgp', bgp, 'expected ipv4Address or ipv6Address');
      }
      const asNumber = r.value('spec.bgp.asNumber');
      spec['bgp'] = Object.fromEntries(
        Object.entries({ ipv4Address, ipv6Address, asNumber }).filter(
          ([, v]) => v !== undefined && v !== null,
        ),
      );
    }
    const orchRefs = r.list('spec.orchRefs')?.map((_, i) => {
      const ref: Record<string, string> = {};
      const orchestrator = r.requiredString(`spec.orchRefs[${i}].orchestrator`, 'expected the orchestrator');
      const nodeName = r.string(`spec.orchRefs[${i}].nodeName`);
      if (nodeName !== undefined) ref['nodeName'] = nodeName;
      if (orchestrator !== undefined) ref['orchestrator'] = orchestrator;
      return ref;
    });
    if (orchRefs !== undefined) spec['orchRefs'] = orchRefs;
    if (name === undefined) return undefined;
    return { metadata: metadata(convertV1NodeName(name)), spec };
  },

  hostEndpoint(r) {
    const name = r.requiredString('metadata.name', 'expected the endpoint name');
    const node = r.requiredString('metadata.node', 'expected the node name');
    const labels = r.stringMap('metadata.labels');
    const interfaceName = r.string('spec.interfaceName');
    const expectedIPs = ipsByFamily(r, 'spec.expectedIPs');
    const profiles = r.stringList('spec.profiles')?.map(convertV1ProfileName);
    const ports = endpointPorts(r, 'spec.ports');
    if (name === undefined || node === undefined) return undefined;
    const nodeName = convertV1NodeName(node);
    return {
      metadata: metadata(convertV1Name(`${nodeName}.${name}`), { labels }),
      spec: defined({ node: nodeName, interfaceName, expectedIPs, profiles, ports }),
    };
  },

  workloadEndpoint(r) {
    const endpointId = r.requiredString('metadata.name', 'expected the endpoint name');
    const workloadId = r.requiredString('metadata.workload', 'expected the workload id');
    const orchestratorId = r.requiredString('metadata.orchestrator', 'expected the orchestrator id');
    const node = r.requiredString('metadata.node', 'expected the node name');
    const activeInstanceID = r.string('metadata.activeInstanceID');
    const labels = convertLabels(r.stringMap('metadata.labels'));
    let namespace = 'default';
    let pod: string | undefined;
    let containerID: string | undefined;
    let workload: string | undefined;
    if (orchestratorId === 'k8s' && workloadId !== undefined) {
      // The CNI plugin wrote k8s workload ids as "<namespace>.<pod>".
      const dot = workloadId.indexOf('.');
      if (dot <= 0)
        r.fail('metadata.workload', workloadId, 'expected "<namespace>.<pod>" for orchestrator k8s');
      else {
        namespace = workloadId.slice(0, dot);
        pod = workloadId.slice(dot + 1);
      }
      containerID = activeInstanceID;
    } else if (orchestratorId === 'cni') {
      containerID = workloadId;
    } else if (orchestratorId === 'libnetwork') {
      workload = 'libnetwork';
    } else if (workloadId !== undefined) {
      workload = convertV1Name(workloadId);
    }
    const ipNetworks = netsByFamily(r, 'spec.ipNetworks');
    const ipNATs = r.list('spec.ipNATs')?.map((_, i) => ({
      internalIP: r.string(`spec.ipNATs[${i}].internalIP`),
      externalIP: r.string(`spec.ipNATs[${i}].externalIP`),
    }));
    const spec = {
      interfaceName: r.string('spec.interfaceName'),
      mac: r.string('spec.mac'),
      ipNetworks,
      ipNATs,
      ipv4Gateway: r.string('spec.ipv4Gateway'),
      ipv6Gateway: r.string('spec.ipv6Gateway'),
      profiles: r.stringList('spec.profiles')?.map(convertV1ProfileName),
      ports: endpointPorts(r, 'spec.ports'),
    };
    if ([endpointId, workloadId, orchestratorId, node].includes(undefined) || r.issues.length > 0)
      return undefined;
    const nodeName = convertV1NodeName(node ?? '');
    const orchestrator = convertV1Name(orchestratorId ?? '');
    const endpoint = convertV1Name(endpointId ?? '');
    const segment = pod ?? containerID ?? workload ?? '';
    return {
      metadata: metadata(
        workloadEndpointName({ node: nodeName, orchestrator, workload: segment, endpoint }),
        {
          namespace,
          labels,
        },
      ),
      spec: defined({ orchestrator, workload, node: nodeName, pod, containerID, endpoint, ...spec }),
    };
  },
};

function policyTypes(r: V1Reader, hasIngress: boolean, hasEgress: boolean): string[] {
  const given = r.stringList('spec.types');
  if (given !== undefined && given.length > 0) {
    return given.map((t, i) => {
      const lower = t.toLowerCase();
      if (lower === 'ingress') return 'Ingress';
      if (lower === 'egress') return 'Egress';
      r.fail(`spec.types[${i}]`, t, 'expected ingress or egress');
      return t;
    });
  }
  // v1 defaulted types from the rule lists present: no egress rules means ingress only.
  if (!hasEgress) return ['Ingress'];
  if (!hasIngress) return ['Egress'];
  return ['Ingress', 'Egress'];
}

/** v1 stored addresses per family, so v3 lists IPv4 before IPv6. */
function ipsByFamily(r: V1Reader, path: string): string[] | undefined {
  const items = r.stringList(path);
  if (items === undefined) return undefined;
  const parsed = items.map((text, i) => ({ text, ip: parseIp(text), i }));
  for (const p of parsed) if (!p.ip) r.fail(`${path}[${p.i}]`, p.text, 'expected an IP address');
  const ok = parsed.flatMap((p) => (p.ip ? [p.ip] : []));
  return [...ok.filter((ip) => ip.family === 4), ...ok.filter((ip) => ip.family === 6)].map((ip) =>
    formatIp(ip.family, ip.value),
  );
}

function netsByFamily(r: V1Reader, path: string): string[] | undefined {
  const items = r.stringList(path);
  if (items === undefined) return undefined;
  const parsed = items.map((text, i) => ({ text, cidr: parseCidrOrIp(text), i }));
  for (const p of parsed)
    if (!p.cidr) r.fail(`${path}[${p.i}]`, p.text, 'expected a CIDR such as 10.0.0.1/32');
  const ok = parsed.flatMap((p) => (p.cidr ? [p.cidr] : []));
  return [...ok.filter((c) => c.family === 4), ...ok.filter((c) => c.family === 6)].map(formatMaskedCidr);
}

function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
