import { describe, expect, it } from 'vitest';
import { run } from './calico-program.ts';
import { captureIo } from './cli-io.ts';

describe('the datastore a command opens', () => {
  it('refuses DATASTORE_TYPE=memory, whose writes would vanish when calico exits', async () => {
    const io = captureIo({ env: { DATASTORE_TYPE: 'memory' } });
    const code = await run(['get', 'ippools'], io);
    expect(code).toBe(1);
    expect(io.out).toBe('');
    expect(io.err).toContain('datastoreType "memory" (from env DATASTORE_TYPE)');
    expect(io.err).toContain('use etcdv3');
  });

  it('refuses --datastore-type memory on the command line the same way', async () => {
    const io = captureIo();
    const code = await run(['--datastore-type', 'memory', 'get', 'ippools'], io);
    expect(code).toBe(1);
    expect(io.err).toContain('datastoreType "memory" (from flag');
  });
});
