#!/usr/bin/env node
/**
 * The `calico` program. The CLI itself is `run()` (calico-program.ts); this entry only runs it
 * when executed, so importing it (tests, embedding) has no side effects.
 */
import { run } from './calico-program.ts';

export { type RunOptions, run } from './calico-program.ts';

if (import.meta.main) {
  process.exitCode = await run(process.argv.slice(2));
}
