import { MemoryDatastore } from '@calico-ts/datastore';
import { KernelError } from '@calico-ts/kernel';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { featureOverride } from '../config.ts';
import { Felix } from '../felix.ts';
import { MemoryKernel } from './memory-kernel.ts';

/** An in-memory kernel whose devices have ethtool features, or no ethtool at all. */
class FeatureKernel extends MemoryKernel {
  readonly features = new Map<string, Map<string, boolean>>();
  featureWrites = 0;
  readonly ethtoolInstalled: boolean;
  constructor(ethtoolInstalled: boolean) {
    super();
    this.ethtoolInstalled = ethtoolInstalled;
  }
  async deviceFeatures(dev: string): Promise<Map<string, boolean>> {
    if (!this.ethtoolInstalled)
      throw new KernelError('Process', { errno: 'ENOENT', operation: `reading the features of ${dev}` });
    let f = this.features.get(dev);
    if (!f) {
      f = new Map([['tx-checksum-ip-generic', true]]);
      this.features.set(dev, f);
    }
    return new Map(f);
  }
  async setDeviceFeatures(dev: string, features: Readonly<Record<string, boolean>>): Promise<void> {
    const f = await this.deviceFeatures(dev);
    for (const [k, v] of Object.entries(features)) f.set(k, v);
    this.features.set(dev, f);
    this.featureWrites++;
  }
}

async function seed(ds: MemoryDatastore, featureDetectOverride?: string): Promise<void> {
  await ds.create('IPPool', {
    metadata: { name: 'vxlan-pool' },
    spec: { cidr: '10.65.0.0/16', vxlanMode: 'Always', ipipMode: 'Never', blockSize: 26 },
  });
  await ds.create('Node', {
    metadata: { name: 'node-a' },
    spec: { bgp: { ipv4Address: '192.0.2.11/24' }, ipv4VXLANTunnelAddr: '10.65.0.1' },
  });
  if (featureDetectOverride)
    await ds.create('FelixConfiguration', { metadata: { name: 'default' }, spec: { featureDetectOverride } });
}

async function node(kernel: MemoryKernel): Promise<void> {
  kernel.addLink('lo', { kind: undefined, mtu: 65536 });
  kernel.addLink('eth0', { kind: undefined, mtu: 1500 });
  await kernel.addAddress('eth0', '192.0.2.11/24');
}

describe('VXLAN device offloads', () => {
  let felix: Felix | undefined;
  afterEach(async () => {
    await felix?.stop();
    felix = undefined;
  });

  async function start(kernel: FeatureKernel, ds: MemoryDatastore, logs: string[] = []): Promise<Felix> {
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    felix = new Felix({
      datastore: ds,
      nodeName: 'node-a',
      kernel,
      logger,
      config: { routeRefreshInterval: 0 },
    });
    felix.start();
    await felix.whenReady();
    return felix;
  }

  it('leaves tx checksum offload on when it is on, and writes nothing', async () => {
    const kernel = new FeatureKernel(true);
    await node(kernel);
    const ds = new MemoryDatastore();
    await seed(ds);
    await start(kernel, ds);
    expect(kernel.features.get('vxlan.calico')?.get('tx-checksum-ip-generic')).toBe(true);
    expect(kernel.featureWrites).toBe(0);
  });

  it('turns it off with ChecksumOffloadBroken=true', async () => {
    const kernel = new FeatureKernel(true);
    await node(kernel);
    const ds = new MemoryDatastore();
    await seed(ds, 'ChecksumOffloadBroken=true');
    await start(kernel, ds);
    expect(kernel.features.get('vxlan.calico')?.get('tx-checksum-ip-generic')).toBe(false);
  });

  it('without ethtool: warns once, and the device, its address and routes are still programmed', async () => {
    const kernel = new FeatureKernel(false);
    await node(kernel);
    const ds = new MemoryDatastore();
    await seed(ds);
    const logs: string[] = [];
    const f = await start(kernel, ds, logs);
    expect(f.status().errors).toEqual([]);
    const vx = kernel.linkByName('vxlan.calico');
    expect(vx).toMatchObject({ up: true, mtu: 1450 });
    expect(kernel.addresses.some((a) => a.index === vx?.index && a.cidr === '10.65.0.1/32')).toBe(true);
    const warnings = logs.filter((l) => l.includes('ethtool is not installed'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 40, device: 'vxlan.calico' });
  });
});

describe('featureOverride', () => {
  it("reads one feature of Calico's featureDetectOverride string", () => {
    expect(featureOverride('ChecksumOffloadBroken=true', 'ChecksumOffloadBroken')).toBe(true);
    expect(
      featureOverride('SNATFullyRandom=false, ChecksumOffloadBroken=false', 'ChecksumOffloadBroken'),
    ).toBe(false);
    expect(featureOverride('SNATFullyRandom=true', 'ChecksumOffloadBroken')).toBeUndefined();
    expect(featureOverride('ChecksumOffloadBroken=yes', 'ChecksumOffloadBroken')).toBeUndefined();
    expect(featureOverride(undefined, 'ChecksumOffloadBroken')).toBeUndefined();
  });
});
