import type { Datastore } from './datastore.ts';
import { isDatastoreError } from './errors.ts';
import { EtcdDatastore } from './etcd-datastore.ts';
import { namespaceProfile } from './model/index.ts';

/**
 * Writes the `kns.<namespace>` profile Calico's kube-controllers keeps for a Kubernetes namespace,
 * unless a profile of that name exists (a controller's or an operator's wins). Pods name it, and
 * without it they get no traffic; whatever plays the orchestrator's part (the local lab) calls this.
 * Returns whether it created the profile.
 */
export async function ensureNamespaceProfile(
  datastore: Datastore,
  namespace: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<boolean> {
  try {
    await datastore.create('Profile', namespaceProfile(namespace, labels));
    return true;
  } catch (err) {
    if (isDatastoreError(err, 'AlreadyExists')) return false;
    throw err;
  }
}

/** ensureNamespaceProfile on the etcd at `endpoints`, through a connection opened for it alone. */
export async function ensureNamespaceProfileAt(endpoints: string[], namespace: string): Promise<boolean> {
  const datastore = new EtcdDatastore({ endpoints });
  try {
    return await ensureNamespaceProfile(datastore, namespace);
  } finally {
    await datastore.close();
  }
}
