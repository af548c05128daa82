import { defaultResource, parseSelector, type RuleInput } from '@calico-ts/datastore';
import { ruleHash } from '@calico-ts/kernel';
import { describe, expect, it } from 'vitest';
import { renderRule } from '../../dataplane/chains.ts';
import { allocateMarkBits } from '../../dataplane/mark-bits.ts';
import { namedPortIpsetId, parseRule } from './parsed-rule.ts';
import { compileNetworkPolicy, compileProfile } from './policy-catalog.ts';
import { lengthLimitedId, policyChainName, profileChainName } from './policy-id.ts';
import { namespaces, np } from './policy-test-model.ts';
import {
  chainRestoreLines,
  policyChains,
  policyIpsetName,
  profileChains,
  type RenderOptions,
  renderParsedRule,
  splitPortList,
} from './rule-render.ts';

const marks = allocateMarkBits(0xffff0000);
const v4: RenderOptions = { marks, family: 4 };
const v6: RenderOptions = { marks, family: 6 };

/** A rule as validated by the model, rendered to text lines. */
function render(input: RuleInput, opts = v4, scope: 'namespace' | 'global' = 'namespace'): string[] {
  const policy = defaultResource('NetworkPolicy', {
    metadata: { name: 'p', namespace: 'x' },
    spec: { ingress: [input] },
  });
  return renderParsedRule(
    parseRule(policy.spec.ingress![0]!, scope === 'global' ? undefined : 'x'),
    opts,
  ).map(renderRule);
}

const setName = (text: string) => policyIpsetName(parseSelector(text).uniqueId, 4);
const ACCEPT = '-j MARK --set-xmark 0x10000/0x10000';
const RETURN_IF_ACCEPTED = '-m mark --mark 0x10000/0x10000 -j RETURN';

describe('rule rendering', () => {
  it('renders Allow from a selector to TCP ports as a set match, multiport, accept mark and RETURN', () => {
    const src = setName('(projectcalico.org/namespace == "x" && app == "web")');
    expect(src).toMatch(/^cali40s:[A-Za-z0-9_-]{23}$/);
    expect(
      render({
        action: 'Allow',
        protocol: 'TCP',
        source: { selector: "app == 'web'" },
        destination: { ports: [80, '8000:8080'] },
      }),
    ).toEqual([
      `-p tcp -m set --match-set ${src} src -m multiport --destination-ports 80,8000:8080 ${ACCEPT}`,
      RETURN_IF_ACCEPTED,
    ]);
  });

  it('renders Deny with a drop mark, Pass with the pass mark, Log with LOG', () => {
    expect(render({ action: 'Deny', source: { nets: ['10.0.0.0/8'] } })).toEqual([
      '--source 10.0.0.0/8 -j MARK --set-xmark 0x40000/0x40000',
      '-m mark --mark 0x40000/0x40000 -j DROP',
    ]);
    expect(render({ action: 'Pass', protocol: 'UDP' })).toEqual([
      '-p udp -j MARK --set-xmark 0x20000/0x20000',
      '-m mark --mark 0x20000/0x20000 -j RETURN',
    ]);
    expect(render({ action: 'Log', protocol: 'TCP' })).toEqual([
      '-p tcp -j LOG --log-prefix "calico-packet: " --log-level 5',
    ]);
  });

  it('renders negations: notProtocol, notNets, notSelector, notPorts, ICMP type/code', () => {
    expect(
      render(
        {
          action: 'Allow',
          protocol: 'ICMP',
          icmp: { type: 8, code: 0 },
          notICMP: { type: 3 },
          destination: { notNets: ['10.1.0.0/16'] },
        },
        v4,
        'global',
      ),
    ).toEqual([
      `-p icmp -m icmp --icmp-type 8/0 ! --destination 10.1.0.0/16 -m icmp ! --icmp-type 3 ${ACCEPT}`,
      RETURN_IF_ACCEPTED,
    ]);
    const not = setName('pod == "c"');
    expect(
      render({ action: 'Allow', notProtocol: 'UDP', source: { notSelector: "pod == 'c'" } }, v4, 'global'),
    ).toEqual([`! -p udp -m set ! --match-set ${not} src ${ACCEPT}`, RETURN_IF_ACCEPTED]);
    expect(
      render({ action: 'Allow', protocol: 'TCP', destination: { notPorts: [22, '6000:6010'] } })[0],
    ).toBe(`-p tcp -m multiport ! --destination-ports 22,6000:6010 ${ACCEPT}`);
  });

  it('uses a match block for several positive nets, and for negated nets beside a positive one', () => {
    // Two positive nets take a block; the one negated net then fits in the main rule.
    expect(
      render({
        action: 'Allow',
        source: { nets: ['10.0.0.0/8', '192.168.0.0/16'], notNets: ['10.1.0.0/16'] },
      }),
    ).toEqual([
      '-j MARK --set-xmark 0x0/0x180000',
      '--source 10.0.0.0/8 -j MARK --set-xmark 0x80000/0x80000',
      '--source 192.168.0.0/16 -j MARK --set-xmark 0x80000/0x80000',
      `! --source 10.1.0.0/16 -m mark --mark 0x80000/0x80000 ${ACCEPT}`,
      RETURN_IF_ACCEPTED,
    ]);
    // One positive net keeps the main rule's slot; the negated ones clear the all-blocks bit.
    expect(
      render({ action: 'Allow', source: { nets: ['10.0.0.0/8'], notNets: ['10.1.0.0/16', '10.2.0.0/16'] } }),
    ).toEqual([
      '-j MARK --set-xmark 0x80000/0x180000',
      '--source 10.1.0.0/16 -j MARK --set-xmark 0x0/0x80000',
      '--source 10.2.0.0/16 -j MARK --set-xmark 0x0/0x80000',
      `--source 10.0.0.0/8 -m mark --mark 0x80000/0x80000 ${ACCEPT}`,
      RETURN_IF_ACCEPTED,
    ]);
  });

  it('ORs named ports with numeric ones in a block; the named port set is filtered by the rule selector', () => {
    const rule = parseRule(
      {
        action: 'Allow',
        protocol: 'TCP',
        destination: { selector: "app == 'db'", ports: [5432, 'metrics'] },
      },
      'x',
    );
    const sel = parseSelector('(projectcalico.org/namespace == "x") && (app == "db")');
    const named = policyIpsetName(namedPortIpsetId(sel, 'tcp', 'metrics'), 4);
    expect(renderParsedRule(rule, v4).map(renderRule)).toEqual([
      '-j MARK --set-xmark 0x0/0x180000',
      '-p tcp -m multiport --destination-ports 5432 -j MARK --set-xmark 0x80000/0x80000',
      `-m set --match-set ${named} dst,dst -j MARK --set-xmark 0x80000/0x80000`,
      `-p tcp -m set --match-set ${policyIpsetName(sel.uniqueId, 4)} dst -m mark --mark 0x80000/0x80000 ${ACCEPT}`,
      RETURN_IF_ACCEPTED,
    ]);
    // Only a named port: its set carries the selector, no separate selector set.
    const only = parseRule(
      { action: 'Allow', protocol: 'TCP', destination: { ports: ['metrics'] } },
      undefined,
    );
    expect(only.dst.ipsets).toEqual([]);
    expect(renderParsedRule(only, v4).map(renderRule)[0]).toBe(
      `-p tcp -m set --match-set ${policyIpsetName(namedPortIpsetId(parseSelector('all()'), 'tcp', 'metrics'), 4)} dst,dst ${ACCEPT}`,
    );
  });

  it('splits more than 15 port slots into blocks', () => {
    const ports = Array.from({ length: 16 }, (_, i) => ({ first: 1000 + i, last: 1000 + i }));
    expect(splitPortList(ports).map((s) => s.length)).toEqual([15, 1]);
    expect(splitPortList([{ first: 1, last: 2 }, ...ports.slice(0, 14)]).map((s) => s.length)).toEqual([
      14, 1,
    ]);
    const lines = render({
      action: 'Allow',
      protocol: 'UDP',
      destination: { ports: ports.map((p) => p.first) },
    });
    expect(lines[0]).toBe('-j MARK --set-xmark 0x0/0x180000');
    expect(lines[1]).toMatch(
      /^-p udp -m multiport --destination-ports 1000,.*,1014 -j MARK --set-xmark 0x80000\/0x80000$/,
    );
    expect(lines[2]).toBe('-p udp -m multiport --destination-ports 1015 -j MARK --set-xmark 0x80000/0x80000');
  });

  it('renders a rule only in its IP family', () => {
    const rule: RuleInput = { action: 'Allow', source: { nets: ['fd00::/64'] } };
    expect(render(rule, v4)).toEqual([]);
    expect(render(rule, v6)[0]).toBe(`--source fd00::/64 ${ACCEPT}`);
    expect(render({ action: 'Allow', ipVersion: 6, protocol: 'ICMPv6', icmp: { type: 128 } }, v6)[0]).toBe(
      `-p icmpv6 -m icmp6 --icmpv6-type 128 ${ACCEPT}`,
    );
    expect(render({ action: 'Allow', ipVersion: 6 }, v4)).toEqual([]);
    expect(render({ action: 'Allow', source: { selector: "a == 'b'" } }, v6)[0]).toMatch(
      /^-m set --match-set cali60s:/,
    );
  });

  it('renders ICMP only for IPv4 and ICMPv6 only for IPv6', () => {
    expect(render({ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128 } }, v4)).toEqual([]);
    expect(render({ action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } }, v6)).toEqual([]);
    expect(render({ action: 'Allow', protocol: 'ICMP', icmp: { type: 8, code: 0 } }, v4)[0]).toBe(
      `-p icmp -m icmp --icmp-type 8/0 ${ACCEPT}`,
    );
    // A negated net of the other family only: the rule has no meaning in this family.
    expect(render({ action: 'Allow', source: { notNets: ['fd00::/8'] } }, v4)).toEqual([]);
  });

  it('renders numeric ports without a protocol once per port protocol', () => {
    expect(
      render({ action: 'Allow', destination: { ports: [53] } }).filter((l) => l.includes('multiport')),
    ).toEqual([
      `-p tcp -m multiport --destination-ports 53 ${ACCEPT}`,
      `-p udp -m multiport --destination-ports 53 ${ACCEPT}`,
      `-p sctp -m multiport --destination-ports 53 ${ACCEPT}`,
    ]);
  });

  it('never matches a rule that needs a Kubernetes Service', () => {
    expect(
      render({ action: 'Allow', destination: { services: { name: 'kube-dns', namespace: 'kube-system' } } }),
    ).toEqual([]);
  });
});

describe('policy and profile chains', () => {
  it('names chains cali-pi-/cali-po- after the policy ID, hashed when longer than 28 characters', () => {
    expect(policyChainName('ingress', 'gnp/allow')).toBe('cali-pi-gnp/allow');
    const long = policyChainName('egress', 'np/production/allow-frontend');
    expect(long).toHaveLength(28);
    expect(long.startsWith('cali-po-_')).toBe(true);
    expect(profileChainName('ingress', 'kns.default')).toBe('cali-pri-kns.default');
    expect(lengthLimitedId('cali-pi-', '_'.padEnd(20, 'x'))).not.toBe(`cali-pi-${'_'.padEnd(20, 'x')}`);
  });

  it('renders a policy chain with its description on the first rule and no trailing RETURN', () => {
    const policy = compileNetworkPolicy(
      np('x', 'db', {
        ingress: [
          { action: 'Deny', protocol: 'TCP', destination: { ports: [22] } },
          { action: 'Allow', source: { selector: "app == 'web'" } },
        ],
      }),
    );
    const [ingress, egress] = policyChains(policy, v4);
    expect(ingress!.name).toBe('cali-pi-np/x/db');
    expect(ingress!.rules.map(renderRule)).toEqual([
      '-m comment --comment "NetworkPolicy x/db ingress" -p tcp -m multiport --destination-ports 22 -j MARK --set-xmark 0x40000/0x40000',
      '-m mark --mark 0x40000/0x40000 -j DROP',
      `-m set --match-set ${setName('(projectcalico.org/namespace == "x") && (app == "web")')} src ${ACCEPT}`,
    ]);
    expect(egress).toEqual({ name: 'cali-po-np/x/db', rules: [] });
  });

  it('renders the kns.<ns> profile as allow-all chains', () => {
    const [pri, pro] = profileChains(compileProfile(namespaces({ x: {} })[0]!), v4);
    expect(pri!.name).toBe('cali-pri-kns.x');
    expect(pri!.rules.map(renderRule)).toEqual([`-m comment --comment "Profile kns.x ingress" ${ACCEPT}`]);
    expect(pro!.name).toBe('cali-pro-kns.x');
  });

  it('gives each rule the cali:<hash> comment the kernel layer writes', () => {
    const chain = { name: 'cali-pi-gnp/a', rules: [{ action: '-j DROP' }, { action: '-j DROP' }] };
    expect(chainRestoreLines(chain)).toEqual([
      `-A cali-pi-gnp/a -m comment --comment "${ruleHash('cali-pi-gnp/a', '-j DROP', 0)}" -j DROP`,
      `-A cali-pi-gnp/a -m comment --comment "${ruleHash('cali-pi-gnp/a', '-j DROP', 1)}" -j DROP`,
    ]);
    expect(chainRestoreLines(chain)[0]).toMatch(/--comment "cali:[A-Za-z0-9_-]{16}"/);
  });
});
