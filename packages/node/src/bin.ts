#!/usr/bin/env node
/**
 * The `calico-node` executable, built as one bundle (tsup.config.ts). A module of its own because
 * in a bundle main.ts's "run when executed" check cannot tell (the library build moves main's body
 * into a shared chunk, and the bundle defines import.meta.main as false).
 */
import { main } from './main.ts';

process.exitCode = await main();
