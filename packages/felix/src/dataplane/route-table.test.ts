import { RouteProtocol } from '@calico-ts/datastore';
import type { Address, Link, Route } from '@calico-ts/kernel';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryKernel } from './memory-kernel.ts';
import { OwnedAddress } from './owned-address.ts';
import { RouteTable } from './route-table.ts';

const log = pino({ level: 'silent' });

async function programmed(): Promise<{ kernel: MemoryKernel; table: RouteTable; cali: Link; eth0: Link }> {
  const kernel = new MemoryKernel();
  const eth0 = kernel.addLink('eth0');
  const cali = kernel.addLink('cali0123456789a');
  const table = new RouteTable();
  table.setRoutes('endpoints', [
    { dst: '10.0.0.5/32', type: 'unicast', dev: cali.name, scope: 'link', protocol: RouteProtocol.device },
  ]);
  table.setRoutes('blackhole', [{ dst: '10.0.0.0/26', type: 'blackhole', protocol: RouteProtocol.calico }]);
  const links = new Map([
    [eth0.name, eth0],
    [cali.name, cali],
  ]);
  await table.apply(kernel, links, log);
  return { kernel, table, cali, eth0 };
}

function kernelRoute(kernel: MemoryKernel, dst: string): Route {
  const r = kernel.routes.find((x) => x.dst === dst);
  if (!r) throw new Error(`no route ${dst}`);
  return r;
}

describe('RouteTable.concerns (kernel route events)', () => {
  it('our own writes do not concern us; a deleted wanted route does', async () => {
    const { kernel, table } = await programmed();
    const wl = kernelRoute(kernel, '10.0.0.5/32');
    const bh = kernelRoute(kernel, '10.0.0.0/26');
    expect(table.concerns('new', wl)).toBe(false);
    expect(table.concerns('new', bh)).toBe(false);
    expect(table.concerns('del', wl)).toBe(true);
    expect(table.concerns('del', bh)).toBe(true);
  });

  it('a wanted destination replaced by another route concerns us; a foreign route elsewhere does not', async () => {
    const { kernel, table, eth0 } = await programmed();
    const wl = kernelRoute(kernel, '10.0.0.5/32');
    expect(table.concerns('new', { ...wl, dev: eth0.index, protocol: RouteProtocol.kernel })).toBe(true);
    const foreign: Route = { ...wl, dst: '192.0.2.0/24', dev: eth0.index, protocol: RouteProtocol.kernel };
    expect(table.concerns('new', foreign)).toBe(false);
    expect(table.concerns('del', foreign)).toBe(false);
    // Deleting someone else's route for a destination we also want (another table) is theirs.
    expect(table.concerns('del', { ...wl, table: 100 })).toBe(false);
  });

  it('a stray route in our protocol that we do not want concerns us (it is removed)', async () => {
    const { kernel, table, eth0 } = await programmed();
    const wl = kernelRoute(kernel, '10.0.0.5/32');
    const stray: Route = { ...wl, dst: '10.0.9.0/26', dev: eth0.index, protocol: RouteProtocol.calico };
    expect(table.concerns('new', stray)).toBe(true);
    // Removing a route we no longer want (our own sweep) does not.
    expect(table.concerns('del', stray)).toBe(false);
  });
});

describe('OwnedAddress (tunnel device address events)', () => {
  const addr = (index: number, cidr: string): Address => ({
    index,
    family: 4,
    address: cidr.split('/')[0]!,
    prefixLen: Number(cidr.split('/')[1]),
    cidr,
    scope: 0,
    label: undefined,
  });

  it('judges deletions of ours and additions of others on our device only', () => {
    const owned = new OwnedAddress();
    expect(owned.concerns('del', addr(7, '10.0.0.1/32'))).toBe(false);
    owned.set(7, '10.0.0.1/32');
    expect(owned.concerns('new', addr(7, '10.0.0.1/32'))).toBe(false);
    expect(owned.concerns('del', addr(7, '10.0.0.1/32'))).toBe(true);
    expect(owned.concerns('new', addr(7, '10.9.9.9/32'))).toBe(true);
    expect(owned.concerns('del', addr(7, '10.9.9.9/32'))).toBe(false);
    expect(owned.concerns('del', addr(8, '10.0.0.1/32'))).toBe(false);
  });
});
