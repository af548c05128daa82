import { MemoryDatastore } from '../src/index.ts';
import { datastoreContract } from './contract.ts';

// One in-process store; every "client" is the same object, as every caller in one process shares it.
datastoreContract('memory', async () => {
  const store = new MemoryDatastore();
  return {
    client: () => store,
    compact: async (revision) => store.compact(revision),
    close: () => store.close(),
  };
});
