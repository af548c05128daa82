/**
 * Set-up shared by the policy integration tests (IPv4 model, IPv6 subset, host endpoints): each
 * runs one Felix over a real etcd and a lab of namespaces, clears its policies between cases and
 * tears everything down afterwards.
 */
import { rmSync } from 'node:fs';
import type { Datastore, KindName } from '@calico-ts/datastore';
import { waitFor } from '@calico-ts/kernel';
import type { EtcdProcess, Lab } from '@calico-ts/lab';
import type { Felix } from '../src/index.ts';

/**
 * Deletes every resource of `kinds` and waits until `save` (an iptables-save of the table that
 * holds the policy chains) no longer shows a `cali-pi-`/`cali-po-` chain.
 */
export async function clearPolicies(
  ds: Datastore,
  kinds: readonly KindName[],
  save: () => Promise<string>,
  what = 'policy chains removed',
): Promise<void> {
  for (const kind of kinds) {
    for (const r of (await ds.list(kind)).items) await ds.delete(kind, r.metadata.name, r.metadata.namespace);
  }
  await waitFor(async () => !/^:cali-p[io]-/m.test(await save()), {
    timeoutMs: 15_000,
    intervalMs: 50,
    what,
  });
}

/**
 * Stops Felix, closes the datastore, stops etcd, removes the lab (its servers by pid, every
 * namespace with its interfaces and rules) and the probe scripts' directory; each part may be
 * missing when set-up failed half-way.
 */
export async function tearDown(parts: {
  felix: Felix | undefined;
  ds: Datastore | undefined;
  etcd: EtcdProcess | undefined;
  lab: Lab | undefined;
  scriptDir: string | undefined;
}): Promise<void> {
  await parts.felix?.stop();
  await parts.ds?.close();
  await parts.etcd?.stop();
  await parts.lab?.teardown();
  if (parts.scriptDir) rmSync(parts.scriptDir, { recursive: true, force: true });
}
