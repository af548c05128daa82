/**
 * Every resource in the shared corpus of real Calico YAML (/work/shared/calico-yaml) must
 * validate — except four documents whose text was damaged on its way out of the docs site: a YAML
 * comment lost its `#` (so `type: 8 # Ping request` became the string "8  Ping request"), or a
 * rule list lost its `ingress:` key and landed inside `types`. Calico itself rejects those (Go's
 * JSON decoding cannot put such strings into an int, a CIDR, or an object into a policy type),
 * so we report them precisely instead of accepting garbage.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateManifest } from '../documents.ts';
import { formatIssues } from '../resource.ts';

const CORPUS = '/work/shared/calico-yaml';
const files = readdirSync(CORPUS).filter((f) => f.endsWith('.yaml'));

const DAMAGED: Record<string, string[]> = {
  'globalnetworkpolicy_tigera-docs_network-policy-policy-rules-icmp-ping.yaml': [
    'spec.ingress[0].icmp.type',
    'spec.ingress[1].icmp.type',
  ],
  'globalnetworkpolicy_tigera-docs_network-policy-policy-rules-icmp-ping-2.yaml': [
    'spec.ingress[0].icmp.type',
    'spec.ingress[0].icmp.code',
  ],
  'globalnetworkpolicy_tigera-docs_network-policy-services-services-cluster-ips-2.yaml': [
    'spec.ingress[0].destination.nets[0]',
    'spec.ingress[1].destination.nets[0]',
  ],
  'globalnetworkpolicy_tigera-docs_network-policy-services-services-cluster-ips.yaml': [
    'spec.types[1]',
    'spec.types[2]',
  ],
};

function entriesOf(file: string) {
  return validateManifest(readFileSync(join(CORPUS, file), 'utf8'));
}

describe('Calico YAML corpus', () => {
  it('holds the 73 resources we expect', () => {
    expect(files.reduce((n, f) => n + entriesOf(f).length, 0)).toBe(73);
  });

  it.each(files.filter((f) => !(f in DAMAGED)))('%s validates', (file) => {
    const entries = entriesOf(file);
    expect(entries.length).toBeGreaterThan(0);
    for (const entry of entries) {
      const report = entry.ok ? '' : `${file} document ${entry.document + 1}:\n${formatIssues(entry.issues)}`;
      expect(report).toBe('');
    }
  });

  it.each(Object.entries(DAMAGED))(
    '%s (damaged text) is rejected at exactly the damaged fields',
    (file, paths) => {
      const [entry, ...rest] = entriesOf(file);
      expect(rest).toEqual([]);
      expect(entry?.ok).toBe(false);
      if (!entry || entry.ok) return;
      expect(entry.issues.map((i) => i.path).sort()).toEqual([...paths].sort());
    },
  );
});
