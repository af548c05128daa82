/**
 * One shell kept inside a namespace that runs the restores Felix writes on every change. Starting
 * `iptables-restore` from calico-node means a fork of a process of 150–250 MB (its page tables are
 * copied) plus `ip netns exec`, and the fork holds calico-node's event loop while it runs; a small
 * shell that is already in the namespace forks and execs the restore for about half of that.
 * Small inputs go inline, as one heredoc with a random terminator (bash reads a script from a
 * pipe byte by byte, so only small ones); a larger input is written to a file of its own in a
 * private temporary directory and redirected into the command, so the shell never reads it.
 * Either is followed by a marker line carrying the exit status; jobs run one at a time. The
 * shell exits after IDLE_MS without work (so it never holds a namespace for long after its last
 * use) and whenever its stdin closes (our process exiting); the next job starts a new one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetNamespace } from './namespace.ts';
import { type CommandResult, execInNamespace, namespaceExecArgv } from './process.ts';

const SHELL = '/bin/bash';
/** Inputs up to this size go inline as a heredoc; bash reads a script from a pipe byte by byte. */
const INLINE_MAX = 16 * 1024;
/** Longer than Felix's 5 s iptables check, so that a quiet node's checks reuse one shell. */
const IDLE_MS = 6_000;

/** Whether this host has the shell: otherwise restores are plain processes. */
export const restoreShellAvailable = (): boolean => existsSync(SHELL);

/** A kept shell for `namespace` when wanted (the default) and this host has bash. */
export function keptShell(namespace: NetNamespace | undefined, wanted = true): RestoreShell | undefined {
  return wanted && restoreShellAvailable() ? new RestoreShell(namespace) : undefined;
}

/**
 * Runs `bin args…`: a job with input through the kept shell when there is one, anything else as
 * a process of its own. A shell that ended mid-job leaves unknown whether the command ran: that
 * is reported as a failed command (exit code null), so the caller reads the state back.
 */
export async function runKept(
  shell: RestoreShell | undefined,
  namespace: NetNamespace | undefined,
  bin: string,
  args: string[],
  input: string | undefined,
): Promise<CommandResult> {
  if (input !== undefined && shell) {
    return shell
      .run(bin, args, input)
      .catch((err: Error) => ({ stdout: '', stderr: err.message, exitCode: null }));
  }
  return execInNamespace(namespace, bin, args, input === undefined ? {} : { input });
}

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

export class RestoreShell {
  readonly #namespace: NetNamespace | undefined;
  #child: ChildProcess | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #idle: NodeJS.Timeout | undefined;
  #closed = false;
  /** The private directory for inputs too large to go inline (made on first use, mode 0700). */
  #inputDir: string | undefined;

  constructor(namespace: NetNamespace | undefined) {
    this.#namespace = namespace;
  }

  /** The running shell's pid, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Runs `command args…` with `input` on stdin; stdout and stderr come back together. */
  run(command: string, args: readonly string[], input: string): Promise<CommandResult> {
    const job = this.#queue.then(() => this.#run(command, args, input));
    this.#queue = job.catch(() => undefined);
    return job;
  }

  /** Ends the shell (it exits on end of input); later runs start a new one unless closed. */
  close(): void {
    this.#closed = true;
    this.#stop();
    if (this.#inputDir) rmSync(this.#inputDir, { recursive: true, force: true });
    this.#inputDir = undefined;
  }

  #stop(): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    const child = this.#child;
    this.#child = undefined;
    child?.stdin?.end();
  }

  #shell(): ChildProcess {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) return this.#child;
    const [bin, ...argv] = this.#namespace
      ? namespaceExecArgv(this.#namespace, SHELL, ['--noprofile', '--norc'])
      : [SHELL, '--noprofile', '--norc'];
    const child = spawn(bin as string, argv, { stdio: ['pipe', 'pipe', 'ignore'], env: process.env });
    // Neither the shell nor its pipes keep our process alive.
    child.unref();
    for (const pipe of [child.stdin, child.stdout])
      if (pipe && 'unref' in pipe && typeof pipe.unref === 'function') pipe.unref();
    child.stdin?.on('error', () => {});
    // A shell that cannot start fails the job through 'exit' or here, never as an uncaught error.
    child.on('error', () => {
      if (this.#child === child) this.#child = undefined;
    });
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    this.#child = child;
    return child;
  }

  async #run(command: string, args: readonly string[], input: string): Promise<CommandResult> {
    if (this.#closed) throw new Error('restore shell closed');
    clearTimeout(this.#idle);
    const child = this.#shell();
    const token = randomBytes(8).toString('hex');
    const eof = `__CALI_EOF_${token}__`;
    const marker = `__CALI_DONE_${token}__`;
    const line = [command, ...args].map(quote).join(' ');
    let inputFile: string | undefined;
    try {
      let script: string;
      if (input.length <= INLINE_MAX) {
        const body = input.endsWith('\n') ? input : `${input}\n`;
        script = `{ ${line} <<'${eof}'\n${body}${eof}\n} 2>&1\necho "${marker} $?"\n`;
      } else {
        this.#inputDir ??= mkdtempSync(join(tmpdir(), 'calico-restore-'));
        inputFile = join(this.#inputDir, token);
        await writeFile(inputFile, input, { mode: 0o600 });
        script = `{ ${line} <${quote(inputFile)}\n} 2>&1\necho "${marker} $?"\n`;
      }
      return await new Promise<CommandResult>((resolve, reject) => {
        let out = '';
        const onData = (d: Buffer) => {
          out += d.toString();
          const at = out.indexOf(`${marker} `);
          if (at < 0) return;
          const end = out.indexOf('\n', at);
          if (end < 0) return;
          done();
          const code = Number(out.slice(at + marker.length + 1, end));
          resolve({ stdout: out.slice(0, at), stderr: out.slice(0, at), exitCode: code });
        };
        const onExit = (err?: unknown) => {
          done();
          reject(new Error(`the restore shell ended while running ${command}`, { cause: err }));
        };
        const done = () => {
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
          child.off('error', onExit);
        };
        child.stdout?.on('data', onData);
        child.once('exit', onExit);
        child.once('error', onExit);
        child.stdin?.write(script);
      });
    } catch (err) {
      this.#stop();
      throw err;
    } finally {
      if (inputFile) await unlink(inputFile).catch(() => {});
      if (!this.#closed && this.#child) {
        this.#idle = setTimeout(() => this.#stop(), IDLE_MS);
        this.#idle.unref();
      }
    }
  }
}
