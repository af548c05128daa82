import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  deleteNamespace,
  lookUpNetNamespace,
  Netlink,
  type NetNamespace,
  peerCredentials,
} from '../src/index.ts';

const prefix = runPrefix('kl');

describeWith([root(), command('ip'), command('unshare')], 'namespace lookup and peer credentials', () => {
  let ns: NetNamespace;
  let dir: string;
  let holder: ChildProcess | undefined;
  /** A file that holds the namespace only in the holder's private mount namespace. */
  let privateMount: string;

  beforeAll(async () => {
    ns = await createNamespace(`${prefix}-n`);
    dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    privateMount = join(dir, 'netns');
    writeFileSync(privateMount, '');
    // A process in a mount namespace of its own bind-mounts the namespace onto the empty file, as
    // podman does after `ip netns exec`: for us the path stays an empty regular file.
    holder = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount --bind /run/netns/${prefix}-n ${privateMount} && echo ready && exec cat`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      holder!.stdout!.once('data', () => resolve());
      holder!.once('exit', (code) => reject(new Error(`mount holder exited with ${code}`)));
    });
  });

  afterAll(async () => {
    if (holder?.pid !== undefined && holder.exitCode === null) {
      const exited = new Promise((r) => holder!.once('exit', r));
      holder.stdin!.end();
      await exited;
    }
    ns?.close();
    await deleteNamespace(`${prefix}-n`, { ifExists: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the namespace through the root of the process whose mounts hold it', async () => {
    const seen = lookUpNetNamespace(privateMount, { rootOfPid: holder!.pid! });
    expect(seen.found).toBe('netns');
    if (seen.found !== 'netns') return;
    try {
      // It is the namespace we made: a link created through it shows up there.
      const nl = Netlink.open(seen.namespace);
      try {
        await nl.createBridge({ name: `${prefix}b` });
      } finally {
        nl.close();
      }
      const inNs = Netlink.open(ns);
      try {
        expect(await inNs.findLink(`${prefix}b`)).toBeTruthy();
        await inNs.deleteLink(`${prefix}b`);
      } finally {
        inNs.close();
      }
    } finally {
      seen.namespace.close();
    }
  });

  it('says what a path is when it is not a network namespace', () => {
    expect(lookUpNetNamespace(privateMount)).toEqual({ found: 'other', what: 'an empty regular file' });
    expect(lookUpNetNamespace(dir)).toEqual({ found: 'other', what: 'a directory' });
    expect(lookUpNetNamespace('/proc/self/ns/mnt')).toEqual({ found: 'other', what: 'a mount namespace' });
    expect(lookUpNetNamespace(join(dir, 'absent'))).toEqual({ found: 'nothing' });
    expect(lookUpNetNamespace(join(dir, 'absent'), { rootOfPid: holder!.pid! })).toEqual({
      found: 'nothing',
    });
  });

  it('opens /proc/<pid>/ns/net paths (magic links) through another root too', () => {
    const seen = lookUpNetNamespace(`/proc/${process.pid}/ns/net`, { rootOfPid: holder!.pid! });
    expect(seen.found).toBe('netns');
    if (seen.found === 'netns') seen.namespace.close();
  });

  it('reads the pid of a unix socket peer', async () => {
    const path = join(dir, 'peer.sock');
    const got = new Promise<number>((resolve) => {
      const server = createServer((s: Socket) => {
        resolve(peerCredentials(s).pid);
        s.destroy();
        server.close();
      });
      server.listen(path, () => netConnect(path).on('error', () => undefined));
    });
    expect(await got).toBe(process.pid);
  });
});
