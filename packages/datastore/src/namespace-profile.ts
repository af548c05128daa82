import type { Datastore } from './datastore.ts';
import { isDatastoreError } from './errors.ts';
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
