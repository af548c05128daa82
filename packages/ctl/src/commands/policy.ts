import { type Datastore, type KindName, parseCidrOrIp, type ResourceOf } from '@calico-ts/datastore';
import {
  configFromSpec,
  type DirectionVerdict,
  defaultFelixConfig,
  evaluateHostFlow,
  explainFlow,
  explainStagedFlow,
  type FailsafePorts,
  type FlowDecision,
  type FlowPacket,
  type FlowTraceStep,
  type HostEndpointPeer,
  type HostFlowVerdict,
  type HostStageVerdict,
  policySnapshot,
  type SnapshotEndpoint,
} from '@calico-ts/felix';
import { Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';

/** The kinds that decide a flow: what Felix's calculation graph reads for policy. */
export async function readPolicyState(datastore: Datastore) {
  const list = async <K extends KindName>(kind: K): Promise<ResourceOf<K>[]> =>
    (await datastore.list(kind)).items;
  const hostEndpoints = await list('HostEndpoint');
  const felixConfigs = await list('FelixConfiguration');
  const snapshot = policySnapshot({
    networkPolicies: await list('NetworkPolicy'),
    globalNetworkPolicies: await list('GlobalNetworkPolicy'),
    kubernetesNetworkPolicies: await list('KubernetesNetworkPolicy'),
    stagedNetworkPolicies: await list('StagedNetworkPolicy'),
    stagedGlobalNetworkPolicies: await list('StagedGlobalNetworkPolicy'),
    stagedKubernetesNetworkPolicies: await list('StagedKubernetesNetworkPolicy'),
    tiers: await list('Tier'),
    profiles: await list('Profile'),
    workloadEndpoints: await list('WorkloadEndpoint'),
    networkSets: await list('NetworkSet'),
    globalNetworkSets: await list('GlobalNetworkSet'),
  });
  return { ...snapshot, hostEndpoints, felixConfigs };
}

type Snapshot = Awaited<ReturnType<typeof readPolicyState>>;

/** `10.0.0.1`, `<namespace>/<pod or endpoint name>`, or a bare pod/endpoint name in `default`. */
export function resolvePeer(
  snapshot: Snapshot,
  spec: string,
  flag: string,
): { ip: string; endpoint?: SnapshotEndpoint } {
  const ip = parseCidrOrIp(spec);
  if (ip && !spec.includes('/')) {
    const endpoint = snapshot.endpoints.find((e) => e.ips.includes(spec));
    return endpoint ? { ip: spec, endpoint } : { ip: spec };
  }
  const [namespace, name] = spec.includes('/') ? spec.split('/', 2) : ['default', spec];
  const matches = snapshot.endpoints.filter(
    (e) => e.namespace === namespace && (e.pod === name || e.name === `${namespace}/${name}`),
  );
  if (matches.length === 0) {
    throw new CliError(
      `${flag} ${JSON.stringify(spec)}: no pod or workload endpoint ${namespace}/${name}; expected an IP address or <namespace>/<pod>`,
    );
  }
  if (matches.length > 1) {
    throw new CliError(
      `${flag} ${JSON.stringify(spec)} names ${matches.length} endpoints (${matches.map((m) => m.name).join(', ')}); give the endpoint's name or an IP address`,
    );
  }
  const endpoint = matches[0]!;
  const address = endpoint.ips.find((a) => !a.includes(':')) ?? endpoint.ips[0];
  if (!address)
    throw new CliError(`${flag} ${JSON.stringify(spec)}: endpoint ${endpoint.name} has no address`);
  return { ip: address, endpoint };
}

const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp'];

/** `tcp/80`, `udp/53`, `sctp/9`, `icmp`, `icmp/8`, `icmp/3/1`. */
export function parseFlowPort(spec: string): Omit<FlowPacket, 'srcIp' | 'dstIp'> {
  const [protocol = '', ...rest] = spec.toLowerCase().split('/');
  const numbers = rest.map((r) => (/^\d+$/.test(r) ? Number(r) : Number.NaN));
  const bad = (expected: string) => new CliError(`--port ${JSON.stringify(spec)}: expected ${expected}`);
  if (PORT_PROTOCOLS.includes(protocol)) {
    const port = numbers[0];
    if (numbers.length !== 1 || port === undefined || !(port >= 1 && port <= 65535)) {
      throw bad(`${protocol}/<port 1-65535>`);
    }
    return { protocol, dstPort: port };
  }
  if (protocol === 'icmp' || protocol === 'icmpv6') {
    const [type, code] = numbers;
    if (numbers.length > 2 || numbers.some((n) => !(n >= 0 && n <= 255)))
      throw bad(`${protocol}[/<type>[/<code>]]`);
    return {
      protocol,
      ...(type !== undefined ? { icmpType: type } : {}),
      ...(code !== undefined ? { icmpCode: code } : {}),
    };
  }
  throw bad('tcp/<port>, udp/<port>, sctp/<port> or icmp[/<type>[/<code>]]');
}

const POLICY_KINDS: Readonly<Record<string, string>> = {
  np: 'NetworkPolicy',
  gnp: 'GlobalNetworkPolicy',
  knp: 'Kubernetes NetworkPolicy',
  snp: 'StagedNetworkPolicy',
  sgnp: 'StagedGlobalNetworkPolicy',
  sknp: 'StagedKubernetesNetworkPolicy',
};

/** `np/shop/allow-web` → `NetworkPolicy shop/allow-web`. */
export function describePolicy(key: string): string {
  const slash = key.indexOf('/');
  const kind = POLICY_KINDS[key.slice(0, slash)];
  return kind ? `${kind} ${key.slice(slash + 1)}` : key;
}

export function describeDecision(d: FlowDecision): string {
  switch (d.by) {
    case 'rule':
      return `${d.action} by tier ${d.tier}, ${describePolicy(d.policy)}, rule ${d.ruleIndex + 1}`;
    case 'endOfTier':
      return `deny at the end of tier ${d.tier}: policies in it select the endpoint and none of their rules matched`;
    case 'profile':
      return `${d.action} by profile ${d.profile}, rule ${d.ruleIndex + 1}`;
    case 'noProfileMatched':
      return 'deny: no policy decided and no profile rule matched (or the endpoint names no existing profile)';
    case 'notAnEndpoint':
      return 'allow: not a workload endpoint, so no policy applies on this side';
    case 'failsafe':
      return `allow: failsafe port ${d.protocol}/${d.port} (FelixConfiguration failsafe ports)`;
    case 'forwardDefault':
      return 'allow: no applyOnForward policy applies to the host endpoint';
    case 'notProgrammed':
      return 'deny: policy not programmed yet';
  }
}

/** The host endpoint whose expected IPs hold this address (the node's own address). */
function hostEndpointFor(snapshot: Snapshot, ip: string): HostEndpointPeer | undefined {
  const hep = snapshot.hostEndpoints.find((h) => (h.spec.expectedIPs ?? []).includes(ip));
  if (!hep) return undefined;
  return {
    name: hep.metadata.name,
    allInterfaces: hep.spec.interfaceName === '*',
    resolved: snapshot.catalog.resolveHostEndpoint({
      namespace: undefined,
      labels: hep.metadata.labels ?? {},
      profiles: hep.spec.profiles ?? [],
    }),
  };
}

/** The failsafe ports in force on the host endpoint's node (global, then node FelixConfiguration). */
function failsafePorts(snapshot: Snapshot, node: string | undefined): FailsafePorts {
  const config = { ...defaultFelixConfig() };
  for (const name of ['default', `node.${node}`]) {
    const spec = snapshot.felixConfigs.find((c) => c.metadata.name === name)?.spec;
    Object.assign(config, configFromSpec(spec));
  }
  return { inbound: config.failsafeInboundHostPorts, outbound: config.failsafeOutboundHostPorts };
}

const STAGE_NAMES: Readonly<Record<HostStageVerdict['stage'], string>> = {
  untracked: 'untracked (doNotTrack, raw)',
  preDNAT: 'preDNAT (mangle)',
  normal: 'normal',
  forward: 'applyOnForward',
};

function hostLines(label: string, who: string, v: HostFlowVerdict): string {
  const lines = [`${label} ${who}: ${v.allowed ? 'ALLOW' : 'DENY'}`];
  for (const s of v.stages) {
    const what = s.decision ? describeDecision(s.decision) : 'no rule decided; on to the next stage';
    lines.push(`    ${STAGE_NAMES[s.stage]} ${s.direction}: ${s.result.toUpperCase()} — ${what}`);
    for (const step of s.trace) lines.push(`        ${describeStep(step)}`);
  }
  return `${lines.join('\n')}\n`;
}

function describeStep(s: FlowTraceStep): string {
  switch (s.event) {
    case 'log':
      return `log: ${s.profile ? `profile ${s.profile}` : `tier ${s.tier}, ${describePolicy(s.policy ?? '')}`}, rule ${s.ruleIndex + 1}`;
    case 'pass':
      return `pass: tier ${s.tier}, ${describePolicy(s.policy)}, rule ${s.ruleIndex + 1} → next tier`;
    case 'tierDefaultPass':
      return `pass: tier ${s.tier} ends in Pass → next tier`;
    case 'profilePass':
      return `pass: profile ${s.profile}, rule ${s.ruleIndex + 1}`;
  }
}

function directionLines(label: string, who: string, v: DirectionVerdict): string {
  const lines = [`${label} ${who}: ${v.allowed ? 'ALLOW' : 'DENY'} — ${describeDecision(v.decision)}`];
  for (const step of v.trace) lines.push(`    ${describeStep(step)}`);
  return `${lines.join('\n')}\n`;
}

export function policyCommand(ctx: CommandContext): Command {
  const explain = new Command('explain')
    .summary('Say which tier, policy and rule decide a flow between two endpoints')
    .description(
      'Computes, from the datastore and with the calculation Felix enforces, whether a packet from ' +
        "--from to --to is allowed: the source's egress policy and the destination's ingress policy, " +
        'each with the tier, policy and rule that decides it (or the profile, the end-of-tier deny or ' +
        "the default deny), and the Log and Pass rules met on the way. An address in a HostEndpoint's " +
        'expectedIPs is that host endpoint: traffic to it (or from it) meets its untracked, preDNAT ' +
        'and normal policy and the failsafe ports.',
    )
    .requiredOption(
      '--from <PEER>',
      'source: an IP address, or <namespace>/<pod> (a bare name is in default)',
    )
    .requiredOption('--to <PEER>', 'destination: an IP address, or <namespace>/<pod>')
    .requiredOption('--port <PROTO/PORT>', 'tcp/80, udp/53, sctp/9, icmp, icmp/8 or icmp/3/1')
    .addOption(new Option('-o, --output <FORMAT>', 'text or json').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      '\nExamples:\n  calico policy explain --from x/a --to y/b --port tcp/80\n' +
        '  calico policy explain --from 10.244.1.5 --to shop/web-1 --port udp/53 -o json\n',
    )
    .action(async (flags: { from: string; to: string; port: string; output: 'text' | 'json' }) => {
      const port = parseFlowPort(flags.port);
      const snapshot = await readPolicyState(await ctx.datastore());
      const from = resolvePeer(snapshot, flags.from, '--from');
      const to = resolvePeer(snapshot, flags.to, '--to');
      const packet = { ...port, srcIp: from.ip, dstIp: to.ip };
      const verdict = explainFlow(snapshot, packet);
      const staged = explainStagedFlow(snapshot, packet);
      // A host endpoint on either side: traffic to the host through it (input) or from the
      // host out through it (output), with its untracked, preDNAT and normal stages.
      const toHost = verdict.destination ? undefined : hostEndpointFor(snapshot, to.ip);
      const fromHost = verdict.source ? undefined : hostEndpointFor(snapshot, from.ip);
      const nodeOf = (name: string | undefined) =>
        snapshot.hostEndpoints.find((h) => h.metadata.name === name)?.spec.node;
      const host = toHost
        ? {
            side: 'destination' as const,
            hep: toHost,
            verdict: evaluateHostFlow({
              path: 'input',
              in: toHost,
              packet,
              ipsets: snapshot.index,
              failsafe: failsafePorts(snapshot, nodeOf(toHost.name)),
            }),
          }
        : fromHost
          ? {
              side: 'source' as const,
              hep: fromHost,
              verdict: evaluateHostFlow({
                path: 'output',
                out: fromHost,
                packet,
                ipsets: snapshot.index,
                failsafe: failsafePorts(snapshot, nodeOf(fromHost.name)),
              }),
            }
          : undefined;
      const allowed = verdict.allowed && (host?.verdict.allowed ?? true);
      if (flags.output === 'json') {
        ctx.io.stdout(
          `${JSON.stringify(
            {
              source: { ip: from.ip, endpoint: verdict.source?.name ?? null },
              destination: { ip: to.ip, endpoint: verdict.destination?.name ?? null },
              packet: port,
              allowed,
              egress: verdict.egress,
              ingress: verdict.ingress,
              ...(host ? { hostEndpoint: { side: host.side, name: host.hep.name, ...host.verdict } } : {}),
              staged: staged ?? null,
            },
            null,
            2,
          )}\n`,
        );
        return;
      }
      const who = (ip: string, e: SnapshotEndpoint | undefined) => (e ? `${e.name} (${ip})` : ip);
      const hostPart = (side: 'source' | 'destination') =>
        host?.side === side
          ? hostLines(
              side === 'source' ? 'Out of host endpoint' : 'Into host endpoint',
              `${host.hep.name} (${side === 'source' ? from.ip : to.ip})`,
              host.verdict,
            )
          : '';
      ctx.io.stdout(
        `Flow ${who(from.ip, verdict.source)} → ${who(to.ip, verdict.destination)} ${flags.port.toLowerCase()}\n` +
          (hostPart('source') ||
            directionLines('Egress from', who(from.ip, verdict.source), verdict.egress)) +
          (hostPart('destination') ||
            directionLines('Ingress to', who(to.ip, verdict.destination), verdict.ingress)) +
          `Verdict: ${allowed ? 'allowed' : 'denied'}\n` +
          (staged
            ? 'Staged policies (not enforced) would decide:\n' +
              directionLines('Egress from', who(from.ip, verdict.source), staged.egress) +
              directionLines('Ingress to', who(to.ip, verdict.destination), staged.ingress) +
              `Staged verdict: ${staged.allowed ? 'would be allowed' : 'would be denied'}\n`
            : ''),
      );
    });
  return new Command('policy').summary('Explain network policy decisions').addCommand(explain);
}
