/**
 * A host outside the cluster on a lab's underlay: its own network namespace, wired to the
 * underlay's bridge with an address on the underlay subnet and no route to any pod. A pod reaches
 * it only through its node, and gets an answer only when the node masquerades the pod's address
 * (an IP pool's natOutgoing), as with a server on the internet.
 */
import { createHash } from 'node:crypto';
import { createNamespace, deleteNamespace, Netlink, NetNamespace } from '@calico-ts/kernel';
import { LabError } from './errors.ts';

export interface OutsideHostOptions {
  /** The namespace to create (also the switch-side veth's name, so at most 15 characters). */
  name: string;
  /** The underlay namespace holding the bridge, e.g. `<cluster>-ul`. */
  underlayNamespace: string;
  /** The bridge in it, e.g. `<cluster>-br`. */
  bridge: string;
  /** Address with prefix length on the underlay subnet, e.g. 198.51.100.250/24. */
  address: string;
}

export interface OutsideHost {
  namespace: string;
  /** The address without its prefix length. */
  ip: string;
  remove(): Promise<void>;
}

export async function addOutsideHost(options: OutsideHostOptions): Promise<OutsideHost> {
  if (!/^[a-z0-9][-a-z0-9]{0,14}$/.test(options.name))
    throw new LabError(
      'Invalid',
      `outside host name ${JSON.stringify(options.name)}: expected 1–15 of [a-z0-9-]`,
    );
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(options.address);
  if (!m)
    throw new LabError(
      'Invalid',
      `outside host address ${JSON.stringify(options.address)}: expected IPv4/prefix`,
    );
  const ns = await createNamespace(options.name);
  const remove = async () => {
    await deleteNamespace(options.name, { ifExists: true });
  };
  const underlay = NetNamespace.open(options.underlayNamespace);
  const ulNl = Netlink.open(underlay);
  const nl = Netlink.open(ns);
  try {
    // The same MAC every time for the same name: a node's ARP entry for the address, left by an
    // earlier host of this name, stays right, so the first packets are not sent to a gone MAC.
    const mac = `02:${(createHash('sha256').update(options.name).digest('hex').match(/../g) ?? []).slice(0, 5).join(':')}`;
    const veth = await ulNl.createVeth({ name: options.name, peer: { name: 'eth0', namespace: ns, mac } });
    await ulNl.setLink(veth.index, { master: options.bridge, up: true });
    await nl.setLink('lo', { up: true });
    await nl.addAddress('eth0', options.address);
    await nl.setLink('eth0', { up: true });
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  } finally {
    nl.close();
    ulNl.close();
    underlay.close();
    ns.close();
  }
  return { namespace: options.name, ip: m[1]!, remove };
}
