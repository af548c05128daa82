/**
 * The `calico` CLI run in this process (a `calico` process costs seconds of start-up on a loaded
 * machine) against a clusters directory of the test file's own: every cluster its tests make keeps
 * its state and the current-cluster pointer there, not in the machine's /run/calico-ts/clusters,
 * and the supervisors `up` starts inherit it through the environment.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { run } from '../src/calico-program.ts';
import { captureIo } from '../src/cli-io.ts';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export interface LabCli {
  /** The clusters directory (remove it in afterAll). */
  readonly clustersDir: string;
  /** The environment each command sees. */
  readonly env: { CALICO_CLUSTERS_DIR: string; NO_COLOR: string };
  calico(args: string[]): Promise<CliResult>;
  /** Runs the command and expects exit 0; returns its standard output. */
  ok(args: string[]): Promise<string>;
}

/** A fresh clusters directory named after `prefix`, made the process's own for its supervisors. */
export function labCli(prefix: string): LabCli {
  const clustersDir = mkdtempSync(join(tmpdir(), `${prefix}-clusters-`));
  process.env['CALICO_CLUSTERS_DIR'] = clustersDir;
  process.env['CALICO_LOG_LEVEL'] = 'error';
  const env = { CALICO_CLUSTERS_DIR: clustersDir, NO_COLOR: '1' };
  const calico = async (args: string[]): Promise<CliResult> => {
    const io = captureIo({ env });
    const code = await run(args, io);
    return { code, out: io.out, err: io.err };
  };
  const ok = async (args: string[]): Promise<string> => {
    const r = await calico(args);
    expect(r.code, `calico ${args.join(' ')}\n${r.out}${r.err}`).toBe(0);
    return r.out;
  };
  return { clustersDir, env, calico, ok };
}
