#!/usr/bin/env node
// Runnable in place (dist/calico.cjs); the installer swaps this line for its own shebang.
import { main } from '../shim.ts';

main('calico');
