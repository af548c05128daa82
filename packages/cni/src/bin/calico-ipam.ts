import { runShim } from '../shim.ts';

process.exitCode = await runShim('calico-ipam');
