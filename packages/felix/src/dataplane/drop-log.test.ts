import { describe, expect, it } from 'vitest';
import { type ParsedRule, parseRule } from '../calc/policy/parsed-rule.ts';
import { policyStageRules } from '../calc/policy/policy-stage.ts';
import { policyChains } from '../calc/policy/rule-render.ts';
import { DropLogNames, decodeDropPrefix, encodeDropPrefix, MAX_PREFIX_BYTES } from './drop-log.ts';
import { allocateMarkBits } from './mark-bits.ts';

const marks = allocateMarkBits(0xffff0000);

describe('drop log prefixes', () => {
  it('round-trips each verdict, direction and the staged flag', () => {
    const causes = [
      { verdict: 'rule', direction: 'ingress', staged: false, owner: 'np/x/deny-b', ruleIndex: 3 },
      { verdict: 'rule', direction: 'egress', staged: true, owner: 'gnp/web', ruleIndex: 0 },
      { verdict: 'endOfTier', direction: 'egress', staged: false, owner: 'security', ruleIndex: undefined },
      { verdict: 'noProfile', direction: 'ingress', staged: false, owner: '', ruleIndex: undefined },
    ] as const;
    for (const c of causes) expect(decodeDropPrefix(encodeDropPrefix(c))).toEqual(c);
    expect(encodeDropPrefix(causes[0])).toBe('DI3|np/x/deny-b');
    expect(decodeDropPrefix('calico-packet: ')).toBeUndefined();
    expect(decodeDropPrefix('TI3|tier')).toBeUndefined();
  });

  it('hashes an owner that does not fit in 63 bytes and names it again from the table', () => {
    const owner = `np/${'n'.repeat(63)}/${'p'.repeat(200)}`;
    const cause = { verdict: 'rule', direction: 'ingress', staged: true, owner, ruleIndex: 12 } as const;
    const prefix = encodeDropPrefix(cause);
    expect(Buffer.byteLength(prefix)).toBeLessThanOrEqual(MAX_PREFIX_BYTES);
    expect(decodeDropPrefix(prefix)?.owner).toMatch(/^#/);
    const names = new DropLogNames();
    names.note(owner);
    expect(decodeDropPrefix(prefix, names)).toEqual(cause);
  });
});

describe('drop log rendering', () => {
  const rule = (action: 'Allow' | 'Deny'): ParsedRule =>
    parseRule({ action, protocol: 'TCP', destination: { ports: [80] } }, 'x', new Map());

  it('puts an NFLOG record with the rule index just before each Deny rule drops, only when enabled', () => {
    const policy = {
      id: { kind: 'NetworkPolicy', namespace: 'x', name: 'p' },
      key: 'np/x/p',
      calicoName: 'p',
      rules: { ingress: [rule('Allow'), rule('Deny')], egress: [] },
    } as const;
    const [pi] = policyChains(policy, { marks, family: 4, dropLogs: true });
    const actions = pi!.rules.map((r) => r.action);
    const drop = actions.indexOf('-j DROP');
    expect(actions[drop - 1]).toBe('-j NFLOG --nflog-group 1 --nflog-prefix "DI1|np/x/p" --nflog-size 128');
    expect(pi!.rules[drop - 1]!.match).toContain('--hashlimit-name cali-drop');
    const [plain] = policyChains(policy, { marks, family: 4 });
    expect(plain!.rules.some((r) => r.action.includes('NFLOG'))).toBe(false);
  });

  it('records the end of a tier and the no-profile drop in the endpoint chain', () => {
    const tiers = [
      { name: 'default', ingressPolicies: [], egressPolicies: ['np/x/p'], defaultAction: 'Deny' as const },
    ];
    const rules = policyStageRules('egress', tiers, ['kns.x'], marks, 'normal', true);
    const nflog = rules.filter((r) => r.action.includes('NFLOG')).map((r) => r.action);
    expect(nflog).toEqual([
      '-j NFLOG --nflog-group 2 --nflog-prefix "TE|default" --nflog-size 128',
      '-j NFLOG --nflog-group 2 --nflog-prefix "PE|" --nflog-size 128',
    ]);
    expect(policyStageRules('egress', tiers, ['kns.x'], marks).some((r) => r.action.includes('NFLOG'))).toBe(
      false,
    );
  });
});
