import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';

const CLI = resolve(import.meta.dirname, '../src/cli.ts');

function calico(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--conditions=@calico-ts/source', CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CALICO_LOG_LEVEL: 'error' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, out }));
  });
}

async function namespacesWith(prefix: string): Promise<string[]> {
  const { listNamespaces } = await import('@calico-ts/kernel');
  return listNamespaces(`${prefix}-`);
}

describeWith([root(), command('etcd'), command('iptables')], 'calico cluster up (the main job)', () => {
  for (const backend of ['vxlan', 'bgp'] as const) {
    it(`brings up two nodes with ${backend}, pods reach each other, and everything is removed`, async () => {
      const name = runPrefix('cl');
      try {
        const r = await calico([
          'cluster',
          'up',
          '--name',
          name,
          '--nodes',
          '2',
          '--pods',
          '2',
          '--backend',
          backend,
          '--check',
        ]);
        expect(r.code, r.out).toBe(0);
        expect(r.out).toMatch(/pod-to-pod: 12\/12 pings answered/);
        expect(await namespacesWith(name)).toEqual([]);
      } finally {
        await calico(['cluster', 'down', '--name', name]);
      }
    }, 180_000);
  }

  it('refuses a bad cluster name with the reason', async () => {
    const r = await calico(['cluster', 'up', '--name', 'Bad_Name']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/--name.*expected 1–10 of \[a-z0-9-\]/);
  });
});
