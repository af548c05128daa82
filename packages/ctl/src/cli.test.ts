import { MemoryDatastore } from '@calico-ts/datastore';
import { describe } from 'vitest';
import { cliSuite } from '../test/cli-suite.ts';

describe('calico on the memory datastore', () => {
  cliSuite(async () => ({
    reset: async () => new MemoryDatastore(),
    close: async () => {},
  }));
});
