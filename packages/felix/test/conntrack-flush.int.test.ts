/**
 * Established connections and new policy: a TCP connection x/a → x/b:9000 echoes a byte every
 * 100 ms; then a policy denying all ingress to x/b lands. With FelixConfiguration
 * `policyConntrackFlush: Disabled` (the default, as Calico) the connection keeps working; with
 * `Enabled` Felix deletes x/b's conntrack entries and the connection stops at once.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NamespaceProcess } from '@calico-ts/kernel';
import { waitFor } from '@calico-ts/kernel';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { policyChainName } from '../src/index.ts';
import { NetpolModel } from './policy-harness.ts';

/** `serve`: echo server on 9000. `client <ip>`: one connection, prints `ok <n>` or `stalled` per 100 ms. */
const ECHO = `
import socket, sys, threading, time
if sys.argv[1] == 'serve':
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', 9000)); s.listen(16)
    print('serving', flush=True)
    def echo(c):
        while True:
            d = c.recv(64)
            if not d: return
            c.sendall(d)
    while True:
        c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
else:
    c = socket.create_connection((sys.argv[2], 9000), timeout=2); c.settimeout(0.3)
    n = 0
    while True:
        n += 1
        try:
            c.sendall(b'p'); c.recv(64); print('ok', n, flush=True)
        except OSError:
            print('stalled', n, flush=True)
        time.sleep(0.1)
`;

describeWith(
  [root(), command('etcd'), command('iptables'), command('conntrack'), command('python3')],
  'established connections and policyConntrackFlush',
  () => {
    const m = new NetpolModel({ prefix: runPrefix('hc') });
    let script = '';
    let client: NamespaceProcess | undefined;
    let lines: string[] = [];

    beforeAll(async () => {
      await m.start();
      script = join(m.scriptDir!, 'echo.py');
      writeFileSync(script, ECHO);
      const server = await m.lab!.spawn(m.pod('x/b').lab, 'python3', [script, 'serve']);
      await new Promise<void>((resolve) => server.child.stdout!.once('data', () => resolve()));
    }, 120_000);
    afterAll(() => m.teardown(), 60_000);
    afterEach(async () => {
      await client?.stop();
      client = undefined;
      for (const r of (await m.ds.list('NetworkPolicy')).items)
        await m.ds.delete('NetworkPolicy', r.metadata.name, r.metadata.namespace);
      await m.waitChains([], [policyChainName('ingress', 'np/x/deny-b')]);
    });

    async function connect(): Promise<void> {
      lines = [];
      client = await m.lab!.spawn(m.pod('x/a').lab, 'python3', [script, 'client', m.pod('x/b').ip]);
      client.child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
      // Generous: on a loaded machine python3's start alone can take seconds.
      await waitFor(() => lines.filter((l) => l.startsWith('ok')).length >= 3, {
        timeoutMs: 20_000,
        what: 'the connection echoing',
      }).catch((e: unknown) => {
        throw new Error(`client printed ${JSON.stringify(lines.slice(-5))}`, { cause: e });
      });
    }

    async function denyB(): Promise<number> {
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'deny-b', namespace: 'x' },
        spec: { selector: "pod == 'b'", types: ['Ingress'], ingress: [{ action: 'Deny' }] },
      });
      await m.waitChains([policyChainName('ingress', 'np/x/deny-b')]);
      return lines.length;
    }

    async function setFlush(value: 'Enabled' | 'Disabled'): Promise<void> {
      const spec = { policyConntrackFlush: value };
      const existing = (await m.ds.list('FelixConfiguration')).items.find(
        (c) => c.metadata.name === 'default',
      );
      if (existing)
        await m.ds.update('FelixConfiguration', { ...existing, spec: { ...existing.spec, ...spec } });
      else await m.ds.create('FelixConfiguration', { metadata: { name: 'default' }, spec });
    }

    it('Disabled: the established connection goes on after a policy denies it', async () => {
      await setFlush('Disabled');
      await connect();
      const at = await denyB();
      await waitFor(() => lines.slice(at).filter((l) => l.startsWith('ok')).length >= 10, {
        timeoutMs: 15_000,
        what: 'ten more echoes after the deny policy',
      });
      expect(lines.slice(at).filter((l) => l.startsWith('stalled'))).toEqual([]);
      // A new connection is denied, so the policy is in force.
      const probe = await m.measure(['tcp/80']);
      expect(probe.get('tcp/80')!.get('x/a>x/b')).toBe(false);
    }, 60_000);

    it('Enabled: Felix deletes its conntrack entries and the connection stops', async () => {
      await setFlush('Enabled');
      await connect();
      const at = await denyB();
      await waitFor(
        () =>
          lines
            .slice(at)
            .slice(-3)
            .every((l) => l.startsWith('stalled')) && lines.length >= at + 3,
        {
          timeoutMs: 15_000,
          what: 'the connection stalled after the deny policy',
        },
      );
      const stalledFrom = lines.findIndex((l, i) => i >= at && l.startsWith('stalled'));
      expect(lines.slice(stalledFrom).filter((l) => l.startsWith('ok'))).toEqual([]);
    }, 60_000);
  },
);
