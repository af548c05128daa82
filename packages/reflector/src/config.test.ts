import { describe, expect, it } from 'vitest';
import { parseReflectorArgs, ReflectorConfigError } from './config.ts';

const problems = (argv: string[]): string[] => {
  try {
    parseReflectorArgs(argv);
  } catch (err) {
    if (err instanceof ReflectorConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('calico-reflector flags', () => {
  it('takes identity and clients from flags, with defaults', () => {
    const c = parseReflectorArgs([
      '--router-id',
      '192.0.2.1',
      '--client',
      '192.0.2.11',
      '--client',
      '192.0.2.12:1179@65001',
      '--peer',
      '[2001:db8::2]:179',
      '--listen',
      '192.0.2.1:1179',
    ]);
    expect(c.source).toEqual({
      kind: 'flags',
      routerId: '192.0.2.1',
      asNumber: 64512,
      clusterId: '192.0.2.1',
      clients: [
        { address: '192.0.2.11', port: undefined, asNumber: undefined },
        { address: '192.0.2.12', port: 1179, asNumber: 65001 },
      ],
      peers: [{ address: '2001:db8::2', port: 179, asNumber: undefined }],
    });
    expect(c.listen).toEqual({ address: '192.0.2.1', port: 1179 });
    expect(c.health).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(c.metrics).toBeUndefined();
    expect(c.connectRetryTime).toBe(5);
  });

  it('takes a Node name and etcd endpoints for the datastore', () => {
    const c = parseReflectorArgs([
      '--node',
      'rr1',
      '--etcd-endpoints',
      'http://10.0.0.1:2379,http://10.0.0.2:2379',
    ]);
    expect(c.source).toEqual({
      kind: 'datastore',
      node: 'rr1',
      etcdEndpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
    });
    expect(c.listen).toEqual({ address: '0.0.0.0', port: undefined });
  });

  it('lists every problem with flag, value and what was expected', () => {
    expect(
      problems([
        '--router-id',
        '2001:db8::1',
        '--as',
        'x',
        '--client',
        '10.0.0.300',
        '--hold-time',
        '2',
        '--health',
        'nowhere',
      ]),
    ).toEqual([
      '--health: got "nowhere", expected HOST:PORT with an IP host, or "off"',
      '--hold-time: got "2", expected 0 or 3..65535 seconds',
      '--router-id: got "2001:db8::1", expected an IPv4 address',
      '--as: got "x", expected an integer 1..4294967295',
      '--client: got "10.0.0.300", expected IP, IP:PORT, [IPV6]:PORT, optionally @AS',
    ]);
    expect(problems([])).toEqual(['--router-id: missing, expected an IPv4 address (or use --node)']);
    expect(problems(['--node', 'rr1', '--router-id', '192.0.2.1'])).toEqual([
      '--node: the datastore gives the identity and peers; drop --router-id, --client and --peer',
      '--etcd-endpoints: missing, expected etcd URLs with --node',
    ]);
    expect(problems(['--bogus'])[0]).toMatch(/bogus/);
  });
});
