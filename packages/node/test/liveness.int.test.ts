/**
 * Liveness on the health endpoint follows a watchdog over Felix's dataplane loop: a real Felix
 * (memory datastore) whose kernel stops answering mid-apply — as a hung iptables-restore or an
 * unanswered netlink request would leave it — turns /liveness to 503 once the apply has run past
 * its timeout, and back to 200 when the kernel answers again. The kernel is the in-memory one
 * (the only fake here) because a real kernel cannot be made to hang on demand.
 */
import type { AddressInfo } from 'node:net';
import { MemoryDatastore, validateResource } from '@calico-ts/datastore';
import { Felix, MemoryKernel } from '@calico-ts/felix';
import { waitFor } from '@calico-ts/kernel';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { felixHealth } from '../src/calico-node.ts';
import { HealthAggregator, serveHealth } from '../src/health.ts';

/** A memory kernel whose link listing (the first step of every apply) can be held. */
class StallingKernel extends MemoryKernel {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;

  stall(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  override async listLinks() {
    await this.#gate;
    return super.listLinks();
  }
}

const TIMEOUT_MS = 300;
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

it('/liveness turns 503 while a dataplane apply is stalled past its timeout, and 200 again after', async () => {
  const datastore = new MemoryDatastore();
  const kernel = new StallingKernel();
  kernel.addLink('lo', { mtu: 65536 });
  const felix = new Felix({ datastore, nodeName: 'node-a', kernel, logger: pino({ level: 'silent' }) });
  cleanup.push(async () => {
    kernel.release();
    await felix.stop();
  });
  felix.start();
  await felix.whenReady();

  const health = new HealthAggregator();
  health.register('felix', () => felixHealth(felix.status(), TIMEOUT_MS));
  const server = await serveHealth(health, '127.0.0.1', 0);
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/liveness`;
  const liveness = async () => {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as { components: { felix: { detail?: string } } } };
  };
  expect((await liveness()).status).toBe(200);

  kernel.stall();
  const pool = validateResource('IPPool', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'p1' },
    spec: { cidr: '10.66.0.0/16', vxlanMode: 'Always' },
  });
  if (!pool.ok) throw new Error(`test pool invalid: ${JSON.stringify(pool)}`);
  await datastore.create('IPPool', pool.value);
  await waitFor(() => felix.status().applyRunningMs !== undefined, { what: 'an apply under way' });
  // Within the timeout the loop is busy, not stalled.
  expect((await liveness()).status).toBe(200);
  const stalled = await waitFor(
    async () => {
      const r = await liveness();
      return r.status === 503 ? r : undefined;
    },
    { timeoutMs: 5000, what: '/liveness 503' },
  );
  expect(felix.status().applyRunningMs).toBeGreaterThan(TIMEOUT_MS);
  expect(stalled.body.components.felix.detail).toMatch(/Felix dataplane loop stalled/);

  kernel.release();
  await waitFor(async () => (await liveness()).status === 200, { timeoutMs: 5000, what: '/liveness 200' });
  expect(felix.status().applyRunningMs).toBeUndefined();
});
