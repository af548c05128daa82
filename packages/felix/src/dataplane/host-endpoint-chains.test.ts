import { describe, expect, it } from 'vitest';
import type { HostEndpoint, TierInfo } from '../calc/dataplane-update.ts';
import { defaultFelixConfig } from '../config.ts';
import { defaultLogger } from '../logger.ts';
import { renderRule } from './chains.ts';
import { hostDispatchChains } from './host-endpoint-chains.ts';
import { HostEndpointManager } from './host-endpoint-manager.ts';
import { InternalDataplane } from './internal-dataplane.ts';
import { allocateMarkBits } from './mark-bits.ts';
import { MemoryKernel } from './memory-kernel.ts';
import { failsafeChains } from './static-chains.ts';

const marks = allocateMarkBits(0xffff0000);
const config = defaultFelixConfig();

const tier = (ingress: string[], egress: string[] = []): TierInfo => ({
  name: 'default',
  ingressPolicies: ingress,
  egressPolicies: egress,
  defaultAction: 'Deny',
});

function hep(iface: string, extra: Partial<HostEndpoint> = {}): HostEndpoint {
  return {
    name: `hep-${iface}`,
    interfaceName: iface,
    expectedIpv4Addrs: [],
    expectedIpv6Addrs: [],
    profileIds: [],
    tiers: [],
    untrackedTiers: [],
    preDnatTiers: [],
    forwardTiers: [],
    ...extra,
  };
}

function manager(...eps: HostEndpoint[]) {
  const m = new HostEndpointManager(() => marks);
  for (const ep of eps) m.onUpdate({ type: 'hostEndpointUpdate', id: ep.name, endpoint: ep });
  return m;
}

const lines = (
  chains: { name: string; rules: Parameters<typeof renderRule>[0][] }[] | undefined,
  name: string,
) => chains?.find((c) => c.name === name)?.rules.map(renderRule);

describe('host endpoint chains', () => {
  it('filter: cali-fh-/cali-th- behind the failsafe chains, forward chains without, dispatch by interface', () => {
    const t = manager(hep('eth0', { tiers: [tier(['gnp/in'], ['gnp/out'])] })).chains(config);
    expect(lines(t.filter?.chains, 'cali-fh-eth0')).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-m conntrack --ctstate INVALID -j DROP',
      '-j cali-failsafe-in',
      '-j MARK --set-xmark 0x0/0x30000',
      '-m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000',
      '-m mark --mark 0x0/0x20000 -j cali-pi-gnp/in',
      '-m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN',
      '-m comment --comment "End of tier default. Drop if no policies passed packet" -m mark --mark 0x0/0x20000 -j DROP',
      '-m comment --comment "Drop if no profiles matched" -j DROP',
    ]);
    expect(lines(t.filter?.chains, 'cali-th-eth0')).toContain('-j cali-failsafe-out');
    expect(lines(t.filter?.chains, 'cali-th-eth0')).toContain(
      '-m mark --mark 0x0/0x20000 -j cali-po-gnp/out',
    );
    // No applyOnForward policy: forwarded traffic is allowed by default, and never failsafe.
    expect(lines(t.filter?.chains, 'cali-fhfw-eth0')).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-m conntrack --ctstate INVALID -j DROP',
      '-j MARK --set-xmark 0x0/0x30000',
      '-m comment --comment "Allow forwarded traffic by default" -j MARK --set-xmark 0x10000/0x10000',
      '-m comment --comment "Return for accepted forward traffic" -j RETURN',
    ]);
    expect(lines(t.filter?.chains, 'cali-from-host-endpoint')).toEqual(['-i eth0 -g cali-fh-eth0']);
    expect(lines(t.filter?.chains, 'cali-to-host-endpoint')).toEqual(['-o eth0 -g cali-th-eth0']);
    expect(lines(t.filter?.chains, 'cali-from-hep-forward')).toEqual(['-i eth0 -g cali-fhfw-eth0']);
    expect(lines(t.filter?.chains, 'cali-to-hep-forward')).toEqual(['-o eth0 -g cali-thfw-eth0']);
    // Normal egress policy also guards DNATed traffic leaving the host, in mangle, ending in RETURN.
    expect(lines(t.mangle?.chains, 'cali-th-eth0')?.slice(0, 3)).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j MARK --set-xmark 0x10000/0x10000',
      '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-m conntrack --ctstate INVALID -j DROP',
    ]);
    // Nothing untracked or preDNAT: no raw chains, an empty mangle from-dispatch.
    expect(t.raw?.chains.map((c) => c.name)).toEqual(['cali-from-host-endpoint', 'cali-to-host-endpoint']);
    expect(lines(t.mangle?.chains, 'cali-from-host-endpoint')).toEqual([]);
  });

  it('preDNAT: mangle cali-fh- with no end-of-tier drop and no profiles; its policy chains in mangle', () => {
    const m = manager(hep('eth0', { preDnatTiers: [tier(['gnp/pre'])], profileIds: ['p'] }));
    m.onUpdate({
      type: 'activePolicyUpdate',
      policy: {
        id: { kind: 'GlobalNetworkPolicy', namespace: undefined, name: 'pre' },
        key: 'gnp/pre',
        calicoName: 'pre',
        rules: { ingress: [], egress: [] },
      },
    });
    const t = m.chains(config);
    const fh = lines(t.mangle?.chains, 'cali-fh-eth0')!;
    expect(fh).toContain('-j cali-failsafe-in');
    expect(fh).toContain('-m mark --mark 0x0/0x20000 -j cali-pi-gnp/pre');
    expect(fh.some((l) => l.includes('DROP') && !l.includes('INVALID'))).toBe(false);
    expect(fh.some((l) => l.includes('cali-pri-'))).toBe(false);
    expect(lines(t.mangle?.chains, 'cali-from-host-endpoint')).toEqual(['-i eth0 -g cali-fh-eth0']);
    expect(t.mangle?.chains.some((c) => c.name === 'cali-pi-gnp/pre')).toBe(true);
  });

  it('untracked: raw chains without conntrack, NOTRACK on accept, no drop of their own', () => {
    const t = manager(hep('eth0', { untrackedTiers: [tier(['gnp/nt'], ['gnp/nt'])] })).chains(config);
    expect(lines(t.raw?.chains, 'cali-fh-eth0')).toEqual([
      '-j cali-failsafe-in',
      '-j MARK --set-xmark 0x0/0x30000',
      '-m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000',
      '-m mark --mark 0x0/0x20000 -j cali-pi-gnp/nt',
      '-m mark --mark 0x10000/0x10000 -j NOTRACK',
      '-m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN',
    ]);
    expect(lines(t.raw?.chains, 'cali-from-host-endpoint')).toEqual(['-i eth0 -g cali-fh-eth0']);
    expect(lines(t.raw?.chains, 'cali-to-host-endpoint')).toEqual(['-o eth0 -g cali-th-eth0']);
  });

  it('interfaceName "*": the dispatch default, never in raw; a named endpoint keeps its interface', () => {
    const t = manager(
      hep('*', { untrackedTiers: [tier(['gnp/nt'])], preDnatTiers: [tier(['gnp/pre'])] }),
      hep('eth1'),
    ).chains(config);
    expect(lines(t.filter?.chains, 'cali-from-host-endpoint')).toEqual([
      '-i eth1 -g cali-fh-eth1',
      '-g cali-fh-*',
    ]);
    expect(lines(t.filter?.chains, 'cali-to-hep-forward')).toEqual([
      '-o eth1 -g cali-thfw-eth1',
      '-g cali-thfw-*',
    ]);
    // mangle egress: the wildcard endpoint never applies to traffic to local workloads.
    expect(lines(t.mangle?.chains, 'cali-to-host-endpoint')).toEqual([
      '-o eth1 -g cali-th-eth1',
      '-m comment --comment "Skip egress WHEP policy for traffic to local workload" -o cali+ -j RETURN',
      '-g cali-th-*',
    ]);
    expect(lines(t.mangle?.chains, 'cali-from-host-endpoint')).toEqual(['-g cali-fh-*']);
    expect(t.raw?.chains.some((c) => c.name === 'cali-fh-*')).toBe(false);
  });

  it('an endpoint with only expected IPs governs the interface holding one of them', async () => {
    const m = manager(
      hep('x', { interfaceName: undefined, name: 'by-ip', expectedIpv4Addrs: ['198.51.100.11'] }),
    );
    m.observeInterfaces([{ index: 7, name: 'eth0' }], [{ index: 7, address: '198.51.100.11' }]);
    expect(m.resolve()).toEqual(new Map([['eth0', 'by-ip']]));
  });

  it('the alphabetically first endpoint wins an interface', () => {
    const m = manager(hep('eth0', { name: 'b' }), hep('eth0', { name: 'a' }));
    expect(m.resolve()).toEqual(new Map([['eth0', 'a']]));
  });

  it('dispatch chains without endpoints are empty and fall through', () => {
    expect(
      hostDispatchChains([], {
        directions: 'to+from',
        applyOnForward: true,
        defaultIface: undefined,
        workloadPrefixes: ['cali'],
      }),
    ).toEqual([
      { name: 'cali-from-host-endpoint', rules: [] },
      { name: 'cali-to-host-endpoint', rules: [] },
      { name: 'cali-from-hep-forward', rules: [] },
      { name: 'cali-to-hep-forward', rules: [] },
    ]);
  });
});

describe('failsafe chains', () => {
  it("Calico's default ports: inbound tcp 22, udp 68, tcp 179, 2379, 2380, 5473, 6443, 6666, 6667", () => {
    const [inbound, outbound] = failsafeChains(config, 'filter');
    expect(inbound!.rules.map(renderRule)).toEqual(
      [
        'tcp 22',
        'udp 68',
        'tcp 179',
        'tcp 2379',
        'tcp 2380',
        'tcp 5473',
        'tcp 6443',
        'tcp 6666',
        'tcp 6667',
      ].map((s) => {
        const [p, port] = s.split(' ');
        return `-p ${p} -m ${p} --dport ${port} -j ACCEPT`;
      }),
    );
    expect(outbound!.rules.map(renderRule)).toEqual(
      [
        'udp 53',
        'udp 67',
        'tcp 179',
        'tcp 2379',
        'tcp 2380',
        'tcp 5473',
        'tcp 6443',
        'tcp 6666',
        'tcp 6667',
      ].map((s) => {
        const [p, port] = s.split(' ');
        return `-p ${p} -m ${p} --dport ${port} -j ACCEPT`;
      }),
    );
  });

  it('raw also accepts the replies of the other direction, by source port; nets of the other family are left out', () => {
    const cfg = {
      ...config,
      failsafeInboundHostPorts: [
        { protocol: 'tcp' as const, port: 22, net: '10.0.0.0/8' },
        { protocol: 'tcp' as const, port: 23, net: 'fd00::/8' },
      ],
      failsafeOutboundHostPorts: [{ protocol: 'udp' as const, port: 53 }],
    };
    const [inbound, outbound] = failsafeChains(cfg, 'raw');
    expect(inbound!.rules.map(renderRule)).toEqual([
      '-p tcp -m tcp --dport 22 -s 10.0.0.0/8 -j ACCEPT',
      '-p udp -m udp --sport 53 -j ACCEPT',
    ]);
    expect(outbound!.rules.map(renderRule)).toEqual([
      '-p udp -m udp --dport 53 -j ACCEPT',
      '-p tcp -m tcp --sport 22 -d 10.0.0.0/8 -j ACCEPT',
    ]);
    expect(failsafeChains(cfg, 'filter', 6)[0]!.rules.map(renderRule)).toEqual([
      '-p tcp -m tcp --dport 23 -s fd00::/8 -j ACCEPT',
    ]);
  });
});

describe('host endpoints through the dataplane', () => {
  it('an expected-IPs endpoint gets its chains when the address appears, with no intent change', async () => {
    const kernel = new MemoryKernel();
    kernel.addLink('eth0');
    const dp = new InternalDataplane({ kernel, nodeName: 'node-1', logger: defaultLogger });
    dp.onUpdates([
      { type: 'configUpdate', config: { ...defaultFelixConfig(), ipv6Support: false } },
      {
        type: 'hostEndpointUpdate',
        id: 'by-ip',
        endpoint: hep('x', { name: 'by-ip', interfaceName: undefined, expectedIpv4Addrs: ['192.0.2.10'] }),
      },
      { type: 'inSync' },
    ]);
    await dp.apply();
    expect(kernel.chain('filter', 'cali-from-host-endpoint')).toEqual([]);
    await kernel.netlink.addAddress('eth0', '192.0.2.10/24');
    await dp.apply();
    expect(kernel.chain('filter', 'cali-from-host-endpoint')?.join('\n')).toContain(
      '-i eth0 -g cali-fh-eth0',
    );
    expect(kernel.chain('filter', 'cali-fh-eth0')).toBeDefined();
    // An IPv6 expected address: the manager lists IPv6 addresses for it.
    kernel.addLink('eth1');
    await kernel.netlink.addAddress('eth1', 'fd00::10/64');
    dp.onUpdates([
      {
        type: 'hostEndpointUpdate',
        id: 'by-ip6',
        endpoint: hep('x', { name: 'by-ip6', interfaceName: undefined, expectedIpv6Addrs: ['fd00::10'] }),
      },
    ]);
    await dp.apply();
    expect(kernel.chain('filter', 'cali-from-host-endpoint')).toEqual([
      '-i eth0 -g cali-fh-eth0',
      '-i eth1 -g cali-fh-eth1',
    ]);
  });
});
