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
