import { createHash } from 'node:crypto';
import { parseSelector, validateSelector } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import {
  entityRuleSelectorText,
  entitySelectors,
  globalNetworkPolicySelectorText,
  networkPolicySelectorText,
  prefixSelectorLabels,
} from './selector-scoping.ts';

const canonical = (text: string) => parseSelector(text).toString();

describe('policy selectors', () => {
  it('scopes a NetworkPolicy to its namespace, then ANDs the pcsa.-prefixed service account selector', () => {
    expect(networkPolicySelectorText('x', {})).toBe("projectcalico.org/namespace == 'x'");
    expect(networkPolicySelectorText('x', { selector: "app == 'web'" })).toBe(
      "(app == 'web') && projectcalico.org/namespace == 'x'",
    );
    expect(
      canonical(
        networkPolicySelectorText('x', { selector: 'all()', serviceAccountSelector: "role == 'ci'" }),
      ),
    ).toBe('((all() && projectcalico.org/namespace == "x") && pcsa.role == "ci")');
  });

  it('makes all() in a GNP with a namespaceSelector mean "any namespaced endpoint"', () => {
    expect(globalNetworkPolicySelectorText({ selector: 'all()', namespaceSelector: "team == 'a'" })).toBe(
      '(has(projectcalico.org/namespace)) && pcns.team == "a"',
    );
    expect(globalNetworkPolicySelectorText({ namespaceSelector: 'all()' })).toBe(
      'has(projectcalico.org/namespace)',
    );
    expect(globalNetworkPolicySelectorText({ serviceAccountSelector: 'all()' })).toBe(
      'has(projectcalico.org/serviceaccount)',
    );
    // Empty selector and no namespaceSelector: every endpoint, host endpoints included.
    expect(globalNetworkPolicySelectorText({})).toBe('');
  });
});

describe('rule selectors', () => {
  it('adds the policy namespace to a NetworkPolicy rule selector and nothing in a GNP', () => {
    expect(entityRuleSelectorText({ selector: "pod == 'b'" }, 'x')).toBe(
      "(projectcalico.org/namespace == 'x') && (pod == 'b')",
    );
    expect(entityRuleSelectorText({ selector: "pod == 'b'" }, undefined)).toBe("pod == 'b'");
    expect(entityRuleSelectorText({ nets: ['10.0.0.0/8'] }, 'x')).toBe('');
  });

  it('prefixes namespaceSelector labels with pcns. and rewrites all() and global()', () => {
    expect(entityRuleSelectorText({ namespaceSelector: "ns == 'y'", selector: "pod == 'a'" }, 'x')).toBe(
      '(pcns.ns == "y") && (pod == \'a\')',
    );
    expect(entityRuleSelectorText({ namespaceSelector: 'all()' }, 'x')).toBe(
      'has(projectcalico.org/namespace)',
    );
    expect(entityRuleSelectorText({ namespaceSelector: 'global()' }, 'x')).toBe(
      '!has(projectcalico.org/namespace)',
    );
  });

  it('matches service accounts by pcsa. labels and by name', () => {
    expect(
      canonical(
        entityRuleSelectorText({ serviceAccounts: { names: ['b', 'a'], selector: "team == 't'" } }, 'x'),
      ),
    ).toBe(
      '(projectcalico.org/namespace == "x" && (pcsa.team == "t" && projectcalico.org/serviceaccount in {"a", "b"}))',
    );
  });

  it('pitfall 2: notSelector is namespace-scoped in a NetworkPolicy, a separate negative match in a GNP', () => {
    const inNp = entitySelectors({ notSelector: "pod == 'c'" }, 'x');
    expect(inNp.positive?.toString()).toBe('(projectcalico.org/namespace == "x" && !pod == "c")');
    expect(inNp.negative).toBeUndefined();
    const inGnp = entitySelectors({ notSelector: "pod == 'c'" }, undefined);
    expect(inGnp.positive).toBeUndefined();
    expect(inGnp.negative?.toString()).toBe('pod == "c"');
  });

  it("names the IP set after Calico's selector ID: s: + base64url SHA-224 of s:<canonical text>", () => {
    const sel = entitySelectors({ selector: "role == 'db'" }, undefined).positive!;
    const digest = createHash('sha224').update('s:role == "db"').digest('base64url');
    expect(sel.uniqueId).toBe(`s:${digest}`);
  });

  it('prefixSelectorLabels prefixes every label and gives "" for a selector that does not parse', () => {
    expect(prefixSelectorLabels("a == 'x' && !has(b) || c in {'1'}", 'pcns.')).toBe(
      '((pcns.a == "x" && !has(pcns.b)) || pcns.c in {"1"})',
    );
    expect(prefixSelectorLabels('a ==', 'pcns.')).toBe('');
  });

  it('pitfall 11: selectors with a newline, unquoted values or "has (" are rejected', () => {
    expect(validateSelector("a == 'x'\n&& b == 'y'")).toBeDefined();
    expect(validateSelector('a == x')).toBeDefined();
    expect(validateSelector('has (a)')).toBeDefined();
    expect(validateSelector("has(a) && a == 'x'")).toBeUndefined();
  });
});
