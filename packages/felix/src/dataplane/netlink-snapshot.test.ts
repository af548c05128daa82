import { describe, expect, it } from 'vitest';
import { defaultLogger } from '../logger.ts';
import { InternalDataplane } from './internal-dataplane.ts';
import { MemoryKernel } from './memory-kernel.ts';

/** A kernel that counts link dumps. */
function countingKernel(): { kernel: MemoryKernel; dumps: () => number } {
  const kernel = new MemoryKernel();
  kernel.addLink('eth0', { kind: undefined });
  let dumps = 0;
  const listLinks = kernel.listLinks.bind(kernel);
  kernel.listLinks = () => {
    dumps++;
    return listLinks();
  };
  return { kernel, dumps: () => dumps };
}

async function syncedDataplane(kernel: MemoryKernel): Promise<InternalDataplane> {
  const dp = new InternalDataplane({ kernel, nodeName: 'node-a', logger: defaultLogger });
  dp.onUpdates([{ type: 'inSync' }]);
  expect(await dp.apply()).toMatchObject({ errors: [] });
  return dp;
}

describe('the link and address snapshot an apply works from', () => {
  it('is dumped before every apply when nobody delivers kernel events', async () => {
    const { kernel, dumps } = countingKernel();
    const dp = await syncedDataplane(kernel);
    await dp.apply();
    await dp.apply();
    expect(dumps()).toBe(3);
  });

  it('is reused while events are watched and none arrived; a link or address event, a link change or the route refresh dumps again', async () => {
    const { kernel, dumps } = countingKernel();
    const dp = await syncedDataplane(kernel);
    dp.watchKernelEvents(true);
    await dp.apply();
    await dp.apply();
    await dp.apply();
    expect(dumps()).toBe(2);

    await kernel.addAddress('eth0', '192.0.2.11/24');
    const [address] = await kernel.listAddresses();
    dp.onKernelEvent({ kind: 'address', action: 'new', address: address! });
    await dp.apply();
    await dp.apply();
    expect(dumps()).toBe(3);

    const link = kernel.addLink('cali1234');
    expect(dp.onKernelEvent({ kind: 'link', action: 'new', link })).toBe(true);
    await dp.apply();
    expect(dumps()).toBe(4);

    dp.refreshRoutes();
    await dp.apply();
    expect(dumps()).toBe(5);

    // A route event says nothing about links or addresses.
    await kernel.replaceRoute({ dst: '10.65.0.5/32', dev: link.index });
    const [route] = await kernel.listRoutes();
    dp.onKernelEvent({ kind: 'route', action: 'del', route: route! });
    await dp.apply();
    expect(dumps()).toBe(5);

    dp.watchKernelEvents(false);
    await dp.apply();
    await dp.apply();
    expect(dumps()).toBe(7);
  });
});
