/** `-f` with files and directories on disk (the rest of the suite feeds stdin). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDatastore } from '@calico-ts/datastore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli.ts';
import { captureIo } from '../src/cli-io.ts';

const pool = (name: string, cidr: string) =>
  `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: ${name}\nspec:\n  cidr: ${cidr}\n`;

describe('-f with files and directories', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'calico-ts-ctl-files-'));
    mkdirSync(join(dir, 'good', 'nested'), { recursive: true });
    writeFileSync(join(dir, 'good', 'a.yaml'), pool('pool-a', '10.0.0.0/16'));
    writeFileSync(
      join(dir, 'good', 'b.json'),
      JSON.stringify({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'pool-b' },
        spec: { cidr: '10.1.0.0/16' },
      }),
    );
    writeFileSync(join(dir, 'good', 'notes.txt'), 'not a manifest');
    writeFileSync(join(dir, 'good', 'nested', 'c.yml'), pool('pool-c', '10.2.0.0/16'));
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', '1.yaml'), pool('ok', '10.3.0.0/16'));
    writeFileSync(
      join(dir, 'bad', '2.yaml'),
      `${pool('', '10.4.0.0/16')}---\n${pool('also-ok', '10.5.0.0/16')}`,
    );
    writeFileSync(join(dir, 'bad', '3.yaml'), 'kind: [');
    mkdirSync(join(dir, 'empty'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function calico(args: string[], ds = new MemoryDatastore()) {
    const io = captureIo({ cwd: dir });
    const code = await run(args, io, { connect: async () => ds });
    return { code, out: io.out, err: io.err, ds };
  }

  it('reads the manifests of a directory in name order, and subdirectories with -R', async () => {
    const flat = await calico(['apply', '-f', 'good']);
    expect(flat.out).toBe("Successfully applied 2 'IPPool' resource(s)\n");
    expect((await flat.ds.list('IPPool')).items.map((p) => p.metadata.name)).toEqual(['pool-a', 'pool-b']);
    const deep = await calico(['apply', '-f', 'good', '-R']);
    expect(deep.out).toBe("Successfully applied 3 'IPPool' resource(s)\n");
  });

  it('names each file in problems found across a directory, and writes nothing', async () => {
    const r = await calico(['apply', '-f', join(dir, 'bad')]);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toEqual([
      `${join(dir, 'bad', '2.yaml')}: document 1 (IPPool): metadata.name: null — a name is required`,
      expect.stringMatching(
        new RegExp(`^${join(dir, 'bad', '3.yaml')}: syntax error at line 1, column \\d+: `),
      ),
      '2 errors found; nothing was written',
      '',
    ]);
    expect((await r.ds.list('IPPool')).items).toEqual([]);
  });

  it('fails on an empty directory unless --skip-empty', async () => {
    expect((await calico(['apply', '-f', 'empty'])).err).toBe('no resources found in empty\n');
    expect(await calico(['apply', '-f', 'empty', '--skip-empty'])).toMatchObject({
      code: 0,
      out: 'No resources specified\n',
    });
  });
});
