import { type AnyResource, type Datastore, isDatastoreError, type KindName } from '@calico-ts/datastore';

/**
 * Reads an object, changes it with `mutate`, and writes it back as a compare-and-swap on the
 * version it read. If someone else wrote in between (Conflict) it reads and mutates once more;
 * a second conflict is reported rather than retried forever.
 */
export async function updateWithRetry(
  datastore: Datastore,
  kind: KindName,
  name: string,
  namespace: string | undefined,
  mutate: (current: AnyResource) => AnyResource,
): Promise<AnyResource> {
  for (let attempt = 0; ; attempt++) {
    const current = await datastore.get(kind, name, namespace);
    const next = mutate(structuredClone(current));
    next.metadata = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
    try {
      return await datastore.update(kind, next);
    } catch (err) {
      if (attempt === 0 && isDatastoreError(err, 'Conflict')) continue;
      throw err;
    }
  }
}
