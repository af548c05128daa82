/**
 * calico-bgpd with `kernel.export: true`: routes learned from BIRD land in the kernel of the
 * daemon's namespace with the configured protocol and table, and leave it when BIRD withdraws.
 * Two lab nodes: BIRD in node 1, the daemon in node 2.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execInNamespace, waitFor } from '@calico-ts/kernel';
import { createLab, type Lab, labNodeIpv4 } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { tempDir } from '../../bgp/test/lab.ts';

const BGPD = resolve(import.meta.dirname, '../src/bgpd.ts');

describeWith([root(), command('bird'), command('birdc')], 'calico-bgpd kernel export', () => {
  const tmp = tempDir('kexp');
  let lab: Lab;

  beforeAll(async () => {
    lab = await createLab({ prefix: runPrefix('bk'), nodes: 2 });
    writeFileSync(
      join(tmp.dir, 'bird.conf'),
      `router id ${labNodeIpv4(1)};
protocol device {}
protocol static s4 { ipv4; route 198.18.1.0/24 blackhole; route 198.18.2.0/24 blackhole; }
protocol bgp up {
  local ${labNodeIpv4(1)} as 64513; neighbor ${labNodeIpv4(2)} as 64512;
  hold time 9;
  ipv4 { import all; export where proto = "s4"; next hop self; };
}
`,
    );
    await lab.spawn(
      lab.node(1),
      'bird',
      ['-f', '-c', join(tmp.dir, 'bird.conf'), '-s', join(tmp.dir, 'bird.ctl')],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    writeFileSync(
      join(tmp.dir, 'bgpd.yaml'),
      `routerId: ${labNodeIpv4(2)}
asNumber: 64512
listen: {address: ${labNodeIpv4(2)}, port: 179}
peers:
  - {address: ${labNodeIpv4(1)}, asNumber: 64513, holdTime: 9}
kernel: {export: true, table: 254, protocol: 186}
`,
    );
    await lab.spawn(
      lab.node(2),
      process.execPath,
      [
        '--conditions=@calico-ts/source',
        BGPD,
        '--config',
        join(tmp.dir, 'bgpd.yaml'),
        '--control',
        join(tmp.dir, 'bgpd.sock'),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }, 60_000);
  afterAll(async () => {
    await lab?.teardown();
    tmp.remove();
  });

  const routes = () => lab.node(2).netlink.listRoutes({ family: 4, protocol: 186 });

  it('installs BIRD’s routes via BIRD with protocol 186 (RTPROT_BGP)', async () => {
    const got = await waitFor(
      async () => {
        const r = await routes();
        return r.length === 2 ? r : undefined;
      },
      { timeoutMs: 30_000, what: 'two exported routes in node 2' },
    );
    expect(got.map((r) => [r.dst, r.gateway, r.table]).sort()).toEqual([
      ['198.18.1.0/24', labNodeIpv4(1), 254],
      ['198.18.2.0/24', labNodeIpv4(1), 254],
    ]);
  });

  it('removes them when BIRD withdraws', async () => {
    const r = await execInNamespace(lab.node(1).namespace, 'birdc', [
      '-s',
      join(tmp.dir, 'bird.ctl'),
      'disable',
      's4',
    ]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    await waitFor(async () => (await routes()).length === 0, { timeoutMs: 20_000, what: 'routes withdrawn' });
  });
});
