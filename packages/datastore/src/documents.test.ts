import { describe, expect, it } from 'vitest';
import { ManifestSyntaxError, parseManifest, validateManifest } from './documents.ts';

const POOL = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.0.0.0/16
`;

describe('parseManifest', () => {
  it('splits multi-document YAML, skipping empty documents, with document index and line', () => {
    const text = `# leading comment
${POOL}---
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: k
  namespace: default
spec: {}
---
`;
    const entries = parseManifest(text);
    expect(entries.map((e) => [e.ok && e.kind, e.document, e.line])).toEqual([
      ['IPPool', 0, 2],
      ['KubernetesNetworkPolicy', 2, 10],
    ]);
  });

  it('reads JSON, a v1 List and a <Kind>List whose items omit apiVersion/kind', () => {
    const json = JSON.stringify({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Tier',
      metadata: { name: 't' },
    });
    expect(parseManifest(json).map((e) => e.ok && e.kind)).toEqual(['Tier']);

    const list = `apiVersion: v1
kind: List
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: a}
  spec: {cidr: 10.0.0.0/16}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkSet
  metadata: {name: b}
`;
    expect(parseManifest(list).map((e) => [e.ok && e.kind, e.item, e.line])).toEqual([
      ['IPPool', 0, 4],
      ['GlobalNetworkSet', 1, 8],
    ]);

    const typed = `apiVersion: projectcalico.org/v3
kind: IPPoolList
items:
- metadata: {name: a}
  spec: {cidr: 10.0.0.0/16}
`;
    const [entry] = validateManifest(typed);
    expect(entry?.ok && entry.resource.kind).toBe('IPPool');
  });

  it('returns nothing for empty or comment-only text', () => {
    expect(parseManifest('')).toEqual([]);
    expect(parseManifest('# nothing here\n---\n')).toEqual([]);
  });

  it('reports an unknown kind, naming the valid ones', () => {
    const [entry] = parseManifest('apiVersion: projectcalico.org/v3\nkind: IPPoll\nmetadata: {name: x}\n');
    expect(entry?.ok).toBe(false);
    if (!entry || entry.ok) return;
    expect(entry.issues[0]?.path).toBe('kind');
    expect(entry.issues[0]?.value).toBe('projectcalico.org/v3 IPPoll');
    expect(entry.issues[0]?.message).toContain('projectcalico.org/v3 IPPool');
    expect(entry.issues[0]?.message).toContain('networking.k8s.io/v1 NetworkPolicy');
  });

  it('reports a missing apiVersion and a non-object document', () => {
    const entries = parseManifest('kind: IPPool\nmetadata: {name: x}\n---\n- just\n- a list\n');
    expect(entries.map((e) => (e.ok ? 'ok' : e.issues.map((i) => i.path).join(',')))).toEqual([
      'apiVersion',
      '',
    ]);
  });

  it('throws ManifestSyntaxError with line and column for malformed YAML', () => {
    const text = `${POOL}---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: [unclosed\n`;
    let caught: unknown;
    try {
      parseManifest(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ManifestSyntaxError);
    const err = caught as ManifestSyntaxError;
    expect(err.line).toBeGreaterThanOrEqual(11);
    expect(err.column).toBeGreaterThan(0);
    expect(err.message).toMatch(/^line \d+, column \d+: /);
  });
});

describe('validateManifest', () => {
  it('validates every document and keeps going after a bad one', () => {
    const text = `${POOL}---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-b
spec:
  cidr: 10.1.2.3/16
  ipipMode: Always
  vxlanMode: Always
`;
    const [a, b] = validateManifest(text);
    expect(a?.ok && a.resource.spec).toMatchObject({ blockSize: 26, nodeSelector: 'all()' });
    expect(b?.ok).toBe(false);
    if (!b || b.ok) return;
    expect(b.kind).toBe('IPPool');
    expect(b.line).toBe(8);
    expect(b.issues.map((i) => i.path).sort()).toEqual(['spec.cidr', 'spec.vxlanMode']);
  });
});
