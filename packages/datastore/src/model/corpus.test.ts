/**
 * Every resource in the shared corpus of real Calico YAML (`shared/calico-yaml`, beside the
 * repository) must validate: 72 resources taken verbatim from Calico's docs and tests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateManifest } from '../documents.ts';
import { formatIssues } from '../resource.ts';

/** The corpus sits in `shared/` next to the repository's root (`<repo>/../shared/calico-yaml`). */
const CORPUS = resolve(import.meta.dirname, '../../../../../shared/calico-yaml');
const files = readdirSync(CORPUS).filter((f) => f.endsWith('.yaml'));

function entriesOf(file: string) {
  return validateManifest(readFileSync(join(CORPUS, file), 'utf8'));
}

describe('Calico YAML corpus', () => {
  it('holds the 72 resources we expect', () => {
    expect(files.reduce((n, f) => n + entriesOf(f).length, 0)).toBe(72);
  });

  it.each(files)('%s validates', (file) => {
    const entries = entriesOf(file);
    expect(entries.length).toBeGreaterThan(0);
    for (const entry of entries) {
      const report = entry.ok ? '' : `${file} document ${entry.document + 1}:\n${formatIssues(entry.issues)}`;
      expect(report).toBe('');
    }
  });
});
