export { type RunOptions, run } from './calico-program.ts';
export { CliError } from './cli-error.ts';
export { type CapturedIo, type CliIo, captureIo, processIo } from './cli-io.ts';
export type { ConnectDatastore, ConnectionFlags } from './command-context.ts';
export { applyJsonPatch, applyMergePatch, type Json, JsonPatchError, parseJsonPatch } from './json-patch.ts';
