/**
 * DEL against a real etcd: the endpoint, the addresses and the interfaces go together, a DEL
 * that cannot finish never leaves an endpoint whose addresses were given back, and repeating it
 * completes it.
 */
import {
  type Datastore,
  type DeleteOptions,
  isDatastoreError,
  type KindName,
  type ResourceOf,
} from '@calico-ts/datastore';
import { Netlink, NetNamespace } from '@calico-ts/kernel';
import { addNetworkList, type Conflist, delNetworkList, invokePlugin, pluginConfig } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { type CniNode, startCniNode } from './cni-fixture.ts';

describeWith([root(), command('etcd'), command('ip')], 'calico CNI DEL against real etcd', () => {
  let node: CniNode;
  let list: Conflist;
  /** Runs around CalicoPlugin's delete of a WorkloadEndpoint when set. */
  let aroundEndpointDelete: {
    before?: () => Promise<void>;
    after?: () => Promise<void>;
    failed?: () => Promise<void>;
  } = {};
  let endpointDeletes = 0;

  beforeAll(async () => {
    node = await startCniNode({
      poolCidr: '10.246.0.0/16',
      prefixTag: 'nd',
      pluginDatastore: (ds) => interposed(ds),
    });
    list = {
      cniVersion: '1.1.0',
      name: 'k8s-pod-network',
      plugins: [{ type: 'calico', mtu: 1450, agent_socket: node.socketPath, ipam: { type: 'calico-ipam' } }],
    };
  });
  afterAll(async () => {
    await node?.teardown();
  });

  /** The datastore as CalicoPlugin sees it: deletes of WorkloadEndpoints pass through the hooks. */
  function interposed(ds: Datastore): Datastore {
    return new Proxy(ds, {
      get(target, prop, receiver) {
        if (prop !== 'delete') {
          const v = Reflect.get(target, prop, receiver) as unknown;
          // The backend keeps its state in private fields: call its methods on the backend itself.
          return typeof v === 'function' ? v.bind(target) : v;
        }
        const del = async <K extends KindName>(
          kind: K,
          name: string,
          namespace?: string,
          options?: DeleteOptions,
        ): Promise<ResourceOf<K>> => {
          if (kind !== 'WorkloadEndpoint') return target.delete(kind, name, namespace, options);
          endpointDeletes++;
          await aroundEndpointDelete.before?.();
          let r: ResourceOf<K>;
          try {
            r = await target.delete(kind, name, namespace, options);
          } catch (err) {
            await aroundEndpointDelete.failed?.();
            throw err;
          }
          await aroundEndpointDelete.after?.();
          return r;
        };
        return del;
      },
    });
  }

  const target = (netns: string, pod: string, cid: string) => ({
    containerId: cid,
    netns,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=del;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${cid}`,
    hostNetns: node.nodeNs,
  });

  async function del(netns: string, pod: string, cid: string, result: unknown) {
    return invokePlugin(
      'calico',
      { ...target(netns, pod, cid), command: 'DEL', path: [node.binDir] },
      pluginConfig(list, list.plugins[0]!, result),
    );
  }

  async function endpointOf(cid: string) {
    const { items } = await node.datastore.list('WorkloadEndpoint', { namespace: 'del' });
    return items.find((w) => (w.spec as { containerID?: string }).containerID === cid);
  }

  async function hostLink(name: string): Promise<boolean> {
    const ns = NetNamespace.open(node.nodeNs);
    const nl = Netlink.open(ns);
    try {
      return (await nl.findLink(name)) !== undefined;
    } finally {
      nl.close();
      ns.close();
    }
  }

  /** Waits until etcd answers again after a restart (the client reconnects on its own). */
  async function etcdAnswers(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await node.datastore.list('ClusterInformation');
        return;
      } catch (err) {
        if (!isDatastoreError(err, 'Unavailable') || Date.now() > deadline) throw err;
      }
    }
  }

  it('DEL of an unknown container, and a second DEL, succeed', async () => {
    const netns = await node.pod('u1');
    expect((await del(netns, 'never', 'never-added', undefined)).code).toBe(0);
    const r = await addNetworkList(list, target(netns, 'once', 'c-once'), [node.binDir]);
    await delNetworkList(list, target(netns, 'once', 'c-once'), [node.binDir], r);
    expect((await del(netns, 'once', 'c-once', r)).code).toBe(0);
    expect(await endpointOf('c-once')).toBeUndefined();
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-once')).toEqual([]);
  });

  it('deletes an endpoint changed since ADD wrote it, and leaves one a newer sandbox owns', async () => {
    const [ns1, ns2] = [await node.pod('s1'), await node.pod('s2')];
    // Changed since ADD: DEL's delete on the version ADD wrote conflicts; it reads, checks, deletes.
    const r1 = await addNetworkList(list, target(ns1, 'edited', 'c-edited'), [node.binDir]);
    const wep = (await endpointOf('c-edited'))!;
    await node.datastore.update('WorkloadEndpoint', {
      ...wep,
      metadata: { ...wep.metadata, labels: { ...wep.metadata.labels, edited: 'yes' } },
    });
    await delNetworkList(list, target(ns1, 'edited', 'c-edited'), [node.binDir], r1);
    expect(await endpointOf('c-edited')).toBeUndefined();
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-edited')).toEqual([]);

    // Two sandboxes of one pod: the old one's DEL keeps the endpoint the new one wrote.
    const old = await addNetworkList(list, target(ns1, 'twice', 'c-old'), [node.binDir]);
    await delNetworkList(list, target(ns1, 'twice', 'c-old'), [node.binDir], old);
    const again = await addNetworkList(list, target(ns2, 'twice', 'c-new'), [node.binDir]);
    const oldAgain = await addNetworkList(list, target(ns1, 'twice2', 'c-old2'), [node.binDir]);
    await delNetworkList(list, target(ns1, 'twice2', 'c-old2'), [node.binDir], oldAgain);
    expect(await endpointOf('c-new')).toBeDefined();
    // The same pod name with the newer sandbox's endpoint in place: the stale DEL leaves it.
    expect((await del(ns1, 'twice', 'c-old', old)).code).toBe(0);
    expect(await endpointOf('c-new')).toBeDefined();
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-new')).toHaveLength(1);
    await delNetworkList(list, target(ns2, 'twice', 'c-new'), [node.binDir], again);
    expect((await node.ipam.check()).ok).toBe(true);
  });

  it('endpoint delete failed (etcd down, back at once): endpoint and addresses both stay; DEL again removes both', async () => {
    const netns = await node.pod('k1');
    const r = await addNetworkList(list, target(netns, 'before', 'c-before'), [node.binDir]);
    const hostIf = (r['interfaces'] as { name: string }[])[0]!.name;
    const ip = (r['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
    // etcd goes away just before the endpoint delete and is back as soon as that delete has failed:
    // anything the DEL did after it would reach a working etcd.
    let down = false;
    aroundEndpointDelete = {
      before: async () => {
        down = true;
        await node.etcd.kill();
      },
      failed: async () => {
        await node.etcd.start();
        down = false;
      },
    };
    let failed: Awaited<ReturnType<typeof del>>;
    try {
      failed = await del(netns, 'before', 'c-before', r);
    } finally {
      aroundEndpointDelete = {};
      if (down) await node.etcd.start();
    }
    await etcdAnswers();
    // CNI SPEC §Error: 11 asks the runtime to retry.
    expect(failed.code, failed.stdout).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ code: 11 });
    expect(await hostLink(hostIf)).toBe(false);
    expect(await endpointOf('c-before')).toBeDefined();
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-before')).toEqual([ip]);

    const retried = await del(netns, 'before', 'c-before', r);
    expect(retried.code, retried.stdout).toBe(0);
    expect(await endpointOf('c-before')).toBeUndefined();
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-before')).toEqual([]);
    expect((await node.ipam.check()).ok).toBe(true);
  });

  it('etcd stopped after the endpoint delete: the addresses stay without endpoint until DEL again frees them', async () => {
    const netns = await node.pod('k2');
    const r = await addNetworkList(list, target(netns, 'after', 'c-after'), [node.binDir]);
    const ip = (r['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
    const deletesBefore = endpointDeletes;
    aroundEndpointDelete = { after: () => node.etcd.kill() };
    let failed: Awaited<ReturnType<typeof del>>;
    try {
      failed = await del(netns, 'after', 'c-after', r);
    } finally {
      aroundEndpointDelete = {};
      await node.etcd.start();
    }
    await etcdAnswers();
    expect(endpointDeletes).toBe(deletesBefore + 1);
    expect(failed.code, failed.stdout).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ code: 11 });
    expect(await endpointOf('c-after')).toBeUndefined();
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-after')).toEqual([ip]);

    const retried = await del(netns, 'after', 'c-after', r);
    expect(retried.code, retried.stdout).toBe(0);
    expect(await node.ipam.ipsByHandle('k8s-pod-network.c-after')).toEqual([]);
    expect((await node.ipam.check()).ok).toBe(true);
  });
});
