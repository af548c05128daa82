/**
 * Processes started inside a network namespace, tracked by pid so the owner stops exactly what it
 * started. Named namespaces go through `ip netns exec` (it also remounts /sys so the process sees
 * its own /sys/class/net); other handles through `nsenter --net=<path>`. Both exec the target, so
 * the child's pid is the program's pid.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { fstatSync, readlinkSync } from 'node:fs';
import { waitFor } from './deadline.ts';
import { KernelError } from './errors.ts';
import { logger } from './logger.ts';
import { NETNS_RUN_DIR, type NetNamespace } from './namespace.ts';

export interface SpawnInNamespaceOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default 'pipe' for stdout/stderr so output can be read; stdin is ignored. */
  stdio?: SpawnOptions['stdio'];
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class NamespaceProcess {
  readonly pid: number;
  readonly namespace: string;
  readonly command: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  #exit: ProcessExit | undefined;

  constructor(child: ChildProcess, namespace: string, command: string) {
    if (child.pid === undefined) {
      throw new KernelError('Process', { operation: `starting ${command}`, namespace });
    }
    this.pid = child.pid;
    this.child = child;
    this.namespace = namespace;
    this.command = command;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 3000): Promise<ProcessExit> {
    if (this.#exit) return this.#exit;
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** The nsfs inode of a process's network namespace ('net:[4026532…]'), or undefined if it is gone. */
export function namespaceInode(pid: number): number | undefined {
  try {
    const m = /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m?.[1] ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** argv that runs `command args…` inside `ns`. */
export function namespaceExecArgv(ns: NetNamespace, command: string, args: readonly string[]): string[] {
  if (ns.path === `${NETNS_RUN_DIR}/${ns.name}`) return ['ip', 'netns', 'exec', ns.name, command, ...args];
  return ['nsenter', `--net=${ns.path}`, '--', command, ...args];
}

/**
 * Start `command` inside `ns` and resolve once the process is really there: `ip netns exec` and
 * nsenter call setns(2) after fork, so right after spawn /proc/<pid>/ns/net is still ours.
 */
export async function spawnInNamespace(
  ns: NetNamespace,
  command: string,
  args: readonly string[] = [],
  options: SpawnInNamespaceOptions = {},
): Promise<NamespaceProcess> {
  const [bin, ...argv] = namespaceExecArgv(ns, command, args);
  const child = spawn(bin as string, argv, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
  });
  const proc = new NamespaceProcess(child, ns.name, [command, ...args].join(' '));
  const target = fstatSync(ns.fd).ino;
  try {
    await waitFor(
      () => {
        if (!proc.running)
          throw new KernelError('Process', {
            operation: `starting ${proc.command}: it exited`,
            namespace: ns.name,
          });
        return namespaceInode(proc.pid) === target;
      },
      { what: `${proc.command} to enter namespace ${ns.name}`, intervalMs: 2 },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  logger.debug({ pid: proc.pid, ns: ns.name, command: proc.command }, 'process started in namespace');
  return proc;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/**
 * Run a command to completion (in `ns`, or here when undefined), feeding `input` on stdin.
 * Resolves with the exit code rather than throwing, so callers build their own typed error.
 */
export function execInNamespace(
  ns: NetNamespace | undefined,
  command: string,
  args: readonly string[] = [],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  const [bin, ...argv] = ns ? namespaceExecArgv(ns, command, args) : [command, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(bin as string, argv, {
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.once('error', (e) =>
      reject(
        new KernelError('Process', {
          errno: (e as NodeJS.ErrnoException).code,
          operation: `running ${command}`,
          namespace: ns?.name,
          cause: e,
        }),
      ),
    );
    child.once('close', (code) =>
      resolve({
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        exitCode: code,
      }),
    );
    if (options.input !== undefined && child.stdin) {
      // EPIPE when the command exits early is reported through its exit code instead.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}
