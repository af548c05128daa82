// biome-ignore-all lint/suspicious/noConsole: an example program prints what it did
// Validates Calico resources (projectcalico.org/v3 YAML or JSON, many documents) with the typed
// model: every problem with its document, line, field path, value and what was expected.
//
//   node validate.ts policy.yaml
import { readFileSync } from 'node:fs';
import { isResourceOf, validateManifest } from '@calico-ts/datastore';

const file = process.argv[2];
if (!file) throw new Error('usage: node validate.ts <file.yaml>');
let problems = 0;
for (const entry of validateManifest(readFileSync(file, 'utf8'))) {
  if (entry.ok) {
    const { kind, metadata } = entry.resource;
    console.log(`ok ${kind} ${metadata.name}`);
    // Narrowed to a typed, defaulted IPPool: blockSize is filled in when the file leaves it out.
    if (isResourceOf('IPPool', entry.resource))
      console.log(`   cidr ${entry.resource.spec.cidr}, blocks of /${entry.resource.spec.blockSize}`);
  } else {
    for (const issue of entry.issues) {
      problems++;
      console.log(
        `${file}:${entry.line}: ${issue.path}: ${issue.message} (got ${JSON.stringify(issue.value)})`,
      );
    }
  }
}
process.exitCode = problems > 0 ? 1 : 0;
