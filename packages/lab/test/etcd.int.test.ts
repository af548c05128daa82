import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { createLab, type EtcdProcess, freePort, LAB_GATEWAY_V4, type Lab, startEtcd } from '../src/index.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** etcd's JSON gateway (v3 API over HTTP): put a key. */
async function put(endpoint: string, key: string, value: string): Promise<void> {
  const r = await fetch(`${endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  });
  expect(r.status).toBe(200);
}

async function get(endpoint: string, key: string): Promise<string | undefined> {
  const r = await fetch(`${endpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(key) }),
  });
  const body = (await r.json()) as { kvs?: { value: string }[] };
  const v = body.kvs?.[0]?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString();
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    return (await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

describeWith([command('etcd')], 'managed etcd on loopback', () => {
  let etcd: EtcdProcess | undefined;
  afterAll(async () => {
    await etcd?.stop();
  });

  it('serves on a free loopback port, survives kill/start with its data, and stop removes its temp dir', async () => {
    etcd = await startEtcd();
    expect(etcd.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(etcd.localEndpoint).toBe(etcd.endpoint);
    await put(etcd.endpoint, '/lab-test/a', 'one');
    const pid = etcd.pid;
    await etcd.kill();
    expect(await healthy(etcd.endpoint)).toBe(false);
    await etcd.start();
    expect(etcd.pid).not.toBe(pid);
    expect(await get(etcd.endpoint, '/lab-test/a')).toBe('one');
    const dataDir = etcd.dataDir;
    await etcd.stop();
    expect(existsSync(dataDir)).toBe(false);
  });

  it('freePort hands out a port nothing listens on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(await healthy(`http://127.0.0.1:${port}`)).toBe(false);
  });
});

describeWith([root(), command('etcd'), command('ip')], 'managed etcd on a lab underlay', () => {
  let lab: Lab;
  let etcd: EtcdProcess | undefined;
  beforeAll(async () => {
    lab = await createLab({ prefix: runPrefix('le'), nodes: 1 });
  });
  afterAll(async () => {
    await etcd?.stop();
    await lab?.teardown();
  });

  it('listens on the gateway address inside the underlay and is reached from here through a relay', async () => {
    etcd = await startEtcd({ netns: lab.underlay.name, host: LAB_GATEWAY_V4 });
    expect(etcd.endpoint).toBe(`http://${LAB_GATEWAY_V4}:2379`);
    expect(etcd.localEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await put(etcd.localEndpoint, '/lab-test/b', 'two');
    // Nothing listens on the underlay address in our own namespace.
    expect(await healthy(etcd.endpoint)).toBe(false);
    await etcd.stop();
    expect(await healthy(etcd.localEndpoint)).toBe(false);
    etcd = undefined;
  });
});
