import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { waitFor } from './deadline.ts';
import { RestoreShell, restoreShellAvailable } from './iptables-restore-shell.ts';

describe.skipIf(!restoreShellAvailable())('RestoreShell (needs /bin/bash)', () => {
  it('feeds the input on stdin and returns the output and exit status, one job after the other', async () => {
    const shell = new RestoreShell(undefined);
    try {
      expect(await shell.run('cat', [], 'a\nb\n')).toEqual({
        stdout: 'a\nb\n',
        stderr: 'a\nb\n',
        exitCode: 0,
      });
      const failed = await shell.run('sh', ['-c', 'cat >/dev/null; echo "it\'s wrong" >&2; exit 3'], 'x');
      expect(failed.exitCode).toBe(3);
      expect(failed.stderr).toBe("it's wrong\n");
      // A line that looks like a terminator is input like any other; concurrent jobs keep theirs.
      const outs = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => shell.run('cat', [], `__CALI_EOF__\n${i}\n$(echo no)\n`)),
      );
      expect(outs.map((o) => o.stdout)).toEqual(
        [0, 1, 2, 3, 4].map((i) => `__CALI_EOF__\n${i}\n$(echo no)\n`),
      );
      expect(shell.pid).toBeDefined();
    } finally {
      shell.close();
    }
  });

  it('passes a large input through a file of its own, removed when the job is done', async () => {
    const shell = new RestoreShell(undefined);
    try {
      const big = Array.from(
        { length: 4000 },
        (_, i) => `-A cali-x -s 10.0.${i >> 8}.${i & 255}/32 -j DROP`,
      ).join('\n');
      expect(big.length).toBeGreaterThan(64 * 1024);
      // The command reads stdin and says where it came from: a regular file, not the shell's pipe.
      const r = await shell.run('sh', ['-c', 'readlink /proc/self/fd/0; cat'], big);
      expect(r.exitCode).toBe(0);
      const [where, ...rest] = r.stdout.split('\n');
      expect(where).toMatch(/calico-restore-.+\/[0-9a-f]{16}$/);
      expect(rest.join('\n')).toBe(big);
      expect(existsSync(where!)).toBe(false);
      // Small inputs still go inline, and jobs after a large one run as before.
      expect((await shell.run('cat', [], 'small\n')).stdout).toBe('small\n');
    } finally {
      shell.close();
    }
  });

  it('starts a new shell when the last one died, and runs nothing once closed', async () => {
    const shell = new RestoreShell(undefined);
    try {
      await shell.run('true', [], '');
      const first = shell.pid!;
      process.kill(first, 'SIGKILL');
      await waitFor(() => shell.pid === undefined, {
        what: 'the killed shell to be noticed',
        timeoutMs: 5000,
      });
      expect((await shell.run('cat', [], 'again\n')).stdout).toBe('again\n');
      expect(shell.pid).not.toBe(first);
    } finally {
      shell.close();
    }
    await expect(shell.run('cat', [], 'x')).rejects.toThrow(/closed/);
  });
});
