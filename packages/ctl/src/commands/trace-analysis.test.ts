import type { TraceEvent } from '@calico-ts/lab';
import { describe, expect, it } from 'vitest';
import {
  analyseTrace,
  cidrContains,
  joinChainRules,
  type NodeTrace,
  parseChainHandles,
  parseRuleComments,
  renderTrace,
  type TraceInput,
} from './trace-analysis.ts';

const pkt = (chain: string, table: string, iif: string, oif?: string, length = 60): TraceEvent => ({
  id: '1',
  family: 'ip',
  table,
  chain,
  type: 'packet',
  iif,
  ...(oif ? { oif } : {}),
  length,
  text: '',
});
const rule = (chain: string, handle: number, verdict: string, target?: string): TraceEvent => ({
  id: '1',
  family: 'ip',
  table: 'filter',
  chain,
  type: 'rule',
  handle,
  verdict,
  ...(target ? { target } : {}),
  text: `counter packets 1 bytes 60 ${verdict}`,
});

const SRC_VETH = 'calia0000000001';
const DST_VETH = 'calib0000000002';

/** The events of a forwarded packet through egress (or ingress) on one node. */
function forwarded(iif: string, oif: string, stageChain: string, policy: string, drop = false): TraceEvent[] {
  return [
    pkt('PREROUTING', 'raw', iif),
    pkt('FORWARD', 'filter', iif, oif),
    rule('cali-FORWARD', 1, 'jump', 'cali-from-wl-dispatch'),
    rule(stageChain, 5, 'jump', policy),
    ...(drop ? [rule(policy, 4, 'drop')] : [rule(stageChain, 6, 'return')]),
    ...(drop ? [] : [pkt('POSTROUTING', 'mangle', iif, oif)]),
  ];
}

const rules = new Map([
  ['cali-pi-np/demo/deny-b', [{ position: 4, handle: 4, id: 'cali:abc', comments: [] }]],
  [
    'cali-tw-calib0000000002',
    [
      {
        position: 9,
        handle: 9,
        id: 'cali:end',
        comments: ['End of tier default. Drop if no policies passed packet'],
      },
    ],
  ],
]);

function input(nodes: NodeTrace[], extra: Partial<TraceInput> = {}): TraceInput {
  return {
    source: { label: 'demo/a', ip: '10.244.1.1', node: 'c-n1' },
    destination: { label: 'demo/b', ip: '10.244.2.1', node: 'c-n2' },
    probe: 'tcp/80',
    size: undefined,
    dontFragment: false,
    nodes,
    route: {
      dst: '10.244.2.0/26',
      type: 'unicast',
      gateway: '198.51.100.12',
      dev: 'eth0',
      protocol: 'bird',
      mtu: 1500,
    },
    nodeAddresses: new Map([['198.51.100.12', 'c-n2']]),
    poolCidrs: ['10.244.0.0/16'],
    chainOwners: new Map([['cali-pi-np/demo/deny-b', 'NetworkPolicy demo/deny-b']]),
    answered: false,
    probeOutput: '',
    ...extra,
  };
}

const n1 = (events: TraceEvent[]): NodeTrace => ({ node: 'c-n1', events, rules: new Map(), uplinkMtu: 1500 });
const n2 = (events: TraceEvent[], uplinkMtu = 1500): NodeTrace => ({
  node: 'c-n2',
  events,
  rules,
  uplinkMtu,
});

describe('analyseTrace', () => {
  it('follows a delivered packet across two nodes', () => {
    const r = analyseTrace(
      input(
        [
          n1(forwarded(SRC_VETH, 'eth0', `cali-fw-${SRC_VETH}`, 'cali-pro-kns.demo')),
          n2(forwarded('eth0', DST_VETH, `cali-tw-${DST_VETH}`, 'cali-pri-kns.demo')),
        ],
        { answered: true },
      ),
    );
    expect(r.result).toBe('delivered');
    expect(r.hops.map((h) => h.hop)).toEqual([
      'source',
      'egress-policy',
      'route',
      'underlay',
      'remote-node',
      'ingress-policy',
      'delivered',
    ]);
    expect(r.hops[1]!.detail).toBe('allowed by profile kns.demo');
    expect(r.hops[3]!.detail).toBe('out of eth0 to c-n2');
    expect(renderTrace(r)).toContain('result: delivered');
  });

  it('names the policy and rule of an ingress drop on the remote node', () => {
    const r = analyseTrace(
      input(
        [
          n1(forwarded(SRC_VETH, 'eth0', `cali-fw-${SRC_VETH}`, 'cali-pro-kns.demo')),
          n2(forwarded('eth0', DST_VETH, `cali-tw-${DST_VETH}`, 'cali-pi-np/demo/deny-b', true)),
        ],
        {
          model: {
            egress: 'allow by profile kns.demo, rule 1',
            ingress: 'deny by tier default, NetworkPolicy demo/deny-b, rule 2',
            ingressPolicy: 'NetworkPolicy demo/deny-b',
          },
        },
      ),
    );
    expect(r.result).toBe('dropped');
    expect(r.endedAt).toBe('ingress-policy');
    expect(r.rule).toMatchObject({
      chain: 'cali-pi-np/demo/deny-b',
      position: 4,
      id: 'cali:abc',
      owner: 'NetworkPolicy demo/deny-b',
    });
    expect(r.summary).toContain('NetworkPolicy demo/deny-b, rule 2');
  });

  it('ends at the route when only the default route matches a pool address', () => {
    const r = analyseTrace(
      input([n1(forwarded(SRC_VETH, 'eth0', `cali-fw-${SRC_VETH}`, 'cali-pro-kns.demo'))], {
        route: {
          dst: 'default',
          type: 'unicast',
          gateway: '198.51.100.1',
          dev: 'eth0',
          protocol: undefined,
          mtu: 1500,
        },
      }),
    );
    expect(r.result).toBe('no-route');
    expect(r.endedAt).toBe('route');
    expect(r.summary).toContain('only the default route');
  });

  it('ends at the route for a blackhole', () => {
    const r = analyseTrace(
      input([n1([pkt('PREROUTING', 'raw', SRC_VETH)])], {
        route: {
          dst: '10.244.1.0/26',
          type: 'blackhole',
          gateway: undefined,
          dev: undefined,
          protocol: '80',
          mtu: undefined,
        },
      }),
    );
    expect(r.result).toBe('no-route');
    expect(r.summary).toContain("this node's own block");
  });

  it('ends at the route when a DF packet exceeds the outgoing MTU (never forwarded)', () => {
    const r = analyseTrace(
      input([n1([pkt('PREROUTING', 'raw', SRC_VETH, undefined, 1500)])], {
        size: 1500,
        dontFragment: true,
        route: {
          dst: '10.244.2.0/26',
          type: 'unicast',
          gateway: '198.51.100.12',
          dev: 'eth0',
          protocol: 'bird',
          mtu: 1400,
        },
      }),
    );
    expect(r.result).toBe('mtu-exceeded');
    expect(r.endedAt).toBe('route');
    expect(r.summary).toContain('exceed the MTU 1400 of eth0');
  });

  it('ends at the remote node when the packet never arrives and exceeds its uplink MTU', () => {
    const big = forwarded(SRC_VETH, 'eth0', `cali-fw-${SRC_VETH}`, 'cali-pro-kns.demo').map((e) =>
      e.type === 'packet' ? { ...e, length: 1500 } : e,
    );
    const r = analyseTrace(input([n1(big), n2([], 1400)], { size: 1500, dontFragment: true }));
    expect(r.result).toBe('mtu-exceeded');
    expect(r.endedAt).toBe('remote-node');
    expect(r.summary).toContain("MTU 1400 of c-n2's underlay interface");
  });
});

describe('analyseTrace through a VXLAN tunnel', () => {
  it('counts the encapsulation when the remote uplink MTU drops the outer packet', () => {
    const inner = forwarded(SRC_VETH, 'vxlan.calico', `cali-fw-${SRC_VETH}`, 'cali-pro-kns.demo').map((e) =>
      e.type === 'packet' ? { ...e, length: 1450 } : e,
    );
    const r = analyseTrace(
      input([n1(inner), n2([], 1450)], {
        size: 1450,
        dontFragment: true,
        route: {
          dst: '10.244.2.0/26',
          type: 'unicast',
          gateway: '10.244.2.0',
          dev: 'vxlan.calico',
          protocol: undefined,
          mtu: 1450,
        },
      }),
    );
    expect(r.hops.find((h) => h.hop === 'tunnel')?.detail).toBe(
      "encapsulated on vxlan.calico to 10.244.2.0 (c-n2's tunnel address)",
    );
    expect(r.result).toBe('mtu-exceeded');
    expect(r.summary).toContain('1500 bytes (1450 + 50 of vxlan.calico) exceed the MTU 1450');
  });
});

describe('kernel listings', () => {
  const save = [
    '*filter',
    ':cali-tw-x - [0:0]',
    '-A cali-tw-x -m comment --comment "cali:AAA" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A cali-tw-x -m comment --comment "cali:BBB" -m comment --comment "End of tier default. Drop if no policies passed packet" -j DROP',
    'COMMIT',
  ].join('\n');
  const nft = [
    'table ip filter {',
    '\tchain cali-tw-x { # handle 63',
    '\t\t ct state related,established counter packets 3 bytes 156 accept # handle 74',
    '\t\t counter packets 0 bytes 0 drop # handle 81',
    '\t}',
    '}',
  ].join('\n');

  it('joins nft handles with iptables-save comments by position', () => {
    const joined = joinChainRules(parseChainHandles(nft), parseRuleComments(save));
    expect(joined.get('cali-tw-x')).toEqual([
      { position: 1, handle: 74, id: 'cali:AAA', comments: [] },
      {
        position: 2,
        handle: 81,
        id: 'cali:BBB',
        comments: ['End of tier default. Drop if no policies passed packet'],
      },
    ]);
  });

  it("keeps an NFLOG rule's prefix (a staged record names the rule)", () => {
    const parsed = parseRuleComments(
      '-A cali-spi-snp/x/y -m comment --comment "cali:CCC" -m mark --mark 0x40000/0x40000 -j NFLOG --nflog-prefix "SDI1|snp/x/y" --nflog-group 1\n',
    );
    expect(parsed.get('cali-spi-snp/x/y')).toEqual([
      { id: 'cali:CCC', comments: [], nflogPrefix: 'SDI1|snp/x/y' },
    ]);
  });

  it('leaves comments out when the two listings disagree on a chain', () => {
    const joined = joinChainRules(new Map([['cali-tw-x', [74]]]), parseRuleComments(save));
    expect(joined.get('cali-tw-x')).toEqual([{ position: 1, handle: 74, id: undefined, comments: [] }]);
  });
});

describe('cidrContains', () => {
  it('matches by prefix', () => {
    expect(cidrContains('10.244.0.0/16', '10.244.3.4')).toBe(true);
    expect(cidrContains('10.244.0.0/16', '10.245.0.1')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '1.2.3.4')).toBe(true);
    expect(cidrContains('fd00::/64', '10.0.0.1')).toBe(false);
  });
});

describe('analyseTrace through staged chains', () => {
  const SFW = `cali-sfw-${SRC_VETH}`;
  const STW = `cali-stw-${DST_VETH}`;
  const SPI = 'cali-spi-snp/demo/deny-b';
  const kr = (position: number, handle: number, comments: string[] = [], nflogPrefix?: string) => ({
    position,
    handle,
    id: `cali:h${handle}`,
    comments,
    ...(nflogPrefix ? { nflogPrefix } : {}),
  });
  // As Felix renders them: the staged deny's mark rule is followed by its NFLOG rule.
  const stagedRules = new Map([
    [SPI, [kr(1, 11), kr(2, 12), kr(3, 13), kr(4, 14, [], 'SDI1|snp/demo/deny-b')]],
    [
      SFW,
      [
        kr(1, 21),
        kr(2, 22, ['Start of staged tier default']),
        kr(3, 23),
        kr(4, 24, ['Return if policy decided']),
        kr(5, 25, [], 'STE|default'),
        kr(6, 26, ['End of staged tier default']),
      ],
    ],
    [STW, [kr(1, 31), kr(2, 32), kr(3, 33), kr(4, 34, ['Return if policy decided'])]],
  ]);
  /** One same-node packet: the egress staged chain ends its tier, the ingress one meets a staged Deny. */
  const events = (ingressStaged: TraceEvent[]): TraceEvent[] => [
    pkt('PREROUTING', 'raw', SRC_VETH),
    pkt('FORWARD', 'filter', SRC_VETH, DST_VETH),
    rule(`cali-fw-${SRC_VETH}`, 3, 'jump', SFW),
    rule(SFW, 21, 'continue'),
    rule(SFW, 23, 'jump', 'cali-spo-sgnp/client-egress'),
    rule(SFW, 26, 'return'),
    rule(`cali-fw-${SRC_VETH}`, 5, 'jump', 'cali-pro-kns.demo'),
    rule(`cali-fw-${SRC_VETH}`, 6, 'return'),
    rule(`cali-tw-${DST_VETH}`, 3, 'jump', STW),
    ...ingressStaged,
    rule(`cali-tw-${DST_VETH}`, 5, 'jump', 'cali-pri-kns.demo'),
    rule(`cali-tw-${DST_VETH}`, 6, 'return'),
    pkt('POSTROUTING', 'mangle', SRC_VETH, DST_VETH),
  ];
  const sameNode = (ingressStaged: TraceEvent[]) =>
    analyseTrace(
      input([{ node: 'c-n1', events: events(ingressStaged), rules: stagedRules, uplinkMtu: 1500 }], {
        destination: { label: 'demo/b', ip: '10.244.1.2', node: 'c-n1' },
        route: {
          dst: '10.244.1.2',
          type: 'unicast',
          gateway: undefined,
          dev: DST_VETH,
          protocol: undefined,
          mtu: 1500,
        },
        chainOwners: new Map([
          [SPI, 'StagedNetworkPolicy demo/deny-b'],
          ['cali-spo-sgnp/client-egress', 'StagedGlobalNetworkPolicy client-egress'],
        ]),
        answered: true,
      }),
    );

  it('reports a staged Deny and a staged end of tier as hops of their own, the enforced verdict unchanged', () => {
    // The NFLOG rule is rate-limited per flow: here it did not match, only the mark rule shows.
    const r = sameNode([
      rule(STW, 31, 'continue'),
      rule(STW, 33, 'jump', SPI),
      rule(SPI, 13, 'continue'),
      rule(STW, 34, 'return'),
    ]);
    expect(r.result).toBe('delivered');
    expect(r.hops.map((h) => `${h.hop}:${h.status}:${h.staged ?? ''}`)).toEqual([
      'source:ok:',
      'staged-egress:ok:would-deny',
      'egress-policy:ok:',
      'route:ok:',
      'staged-ingress:ok:would-deny',
      'ingress-policy:ok:',
      'delivered:ok:',
    ]);
    expect(r.hops[1]!.detail).toBe(
      'staged: would deny at the end of tier default (no staged policy in it allowed the packet)',
    );
    expect(r.hops[4]!.detail).toBe('staged: would deny by StagedNetworkPolicy demo/deny-b rule 2');
    expect(r.hops[4]!.rule).toMatchObject({ chain: SPI, position: 3, handle: 13 });
    // The enforced stage is judged without the staged chains.
    expect(r.hops[2]!.detail).toBe('allowed by profile kns.demo');
    expect(r.hops[5]!.detail).toBe('allowed by profile kns.demo');
    expect(r.summary).toContain(
      'staged policies (not enforced) on egress would deny at the end of tier default',
    );
    expect(renderTrace(r)).toContain('~ staged-ingress');
  });

  it('takes the verdict from the enforced stage when it drops after a staged hop', () => {
    const staged = [rule(STW, 33, 'jump', SPI), rule(SPI, 13, 'continue'), rule(STW, 34, 'return')];
    const r = analyseTrace(
      input(
        [
          {
            node: 'c-n1',
            events: [
              pkt('FORWARD', 'filter', SRC_VETH, DST_VETH),
              rule(`cali-tw-${DST_VETH}`, 3, 'jump', STW),
              ...staged,
              rule(`cali-tw-${DST_VETH}`, 5, 'jump', 'cali-pi-np/demo/deny-b'),
              rule('cali-pi-np/demo/deny-b', 4, 'drop'),
            ],
            rules: new Map([...stagedRules, ...rules]),
            uplinkMtu: 1500,
          },
        ],
        {
          destination: { label: 'demo/b', ip: '10.244.1.2', node: 'c-n1' },
          route: {
            dst: '10.244.1.2',
            type: 'unicast',
            gateway: undefined,
            dev: DST_VETH,
            protocol: undefined,
            mtu: 1500,
          },
          chainOwners: new Map([
            [SPI, 'StagedNetworkPolicy demo/deny-b'],
            ['cali-pi-np/demo/deny-b', 'NetworkPolicy demo/deny-b'],
          ]),
        },
      ),
    );
    expect(r.result).toBe('dropped');
    expect(r.endedAt).toBe('ingress-policy');
    expect(r.rule?.chain).toBe('cali-pi-np/demo/deny-b');
    expect(r.hops.map((h) => h.hop)).toEqual(['source', 'route', 'staged-ingress', 'ingress-policy']);
    expect(r.hops[2]!.detail).toBe('staged: would deny by StagedNetworkPolicy demo/deny-b rule 2');
  });

  it('reports a staged allow when a staged policy decides without a Deny', () => {
    const r = sameNode([rule(STW, 33, 'jump', SPI), rule(SPI, 11, 'continue'), rule(STW, 34, 'return')]);
    expect(r.hops.find((h) => h.hop === 'staged-ingress')).toMatchObject({
      staged: 'would-allow',
      detail: 'staged: would allow by StagedNetworkPolicy demo/deny-b',
    });
  });
});
