// `pnpm bench`: runs every bench/*.bench.ts (or the ones named on the command line) one after
// another — never in parallel, since each compares us with a peer measured in the same run and
// the machine has two cores.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();
let failed = 0;
for (const f of files) {
  process.stderr.write(`\n=== ${f}\n`);
  const r = spawnSync(process.execPath, ['--conditions=@calico-ts/source', f], { cwd: here, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
