#!/usr/bin/env node
/**
 * The `calico-node` executable. A module of its own because the bundler moves main.ts's body into a
 * shared chunk, where `import.meta.main` is never true.
 */
import { main } from './main.ts';

process.exitCode = await main();
