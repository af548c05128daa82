import { type Datastore, EtcdDatastore, KIND_NAMES } from '@calico-ts/datastore';
import { type EtcdProcess, startEtcd } from '@calico-ts/lab';
import { describe } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { cliSuite } from './cli-suite.ts';

describeWith([command('etcd')], 'calico on a real etcd (in-process)', () => {
  describe('every verb', () => {
    let etcd: EtcdProcess;
    let store: Datastore;
    cliSuite(async () => {
      etcd = await startEtcd();
      store = new EtcdDatastore({ endpoints: etcd.endpoint });
      return {
        reset: async () => {
          for (const kind of KIND_NAMES) {
            for (const r of (await store.list(kind)).items) {
              await store.delete(kind, r.metadata.name, r.metadata.namespace);
            }
          }
          return store;
        },
        close: async () => {
          await store.close();
          await etcd.stop();
        },
      };
    });
  });
});
