import { describe, expect, it } from 'vitest';
import { CNI_ERROR, CniError } from './errors.ts';
import { parseCniArgs, parseRequest } from './request.ts';
import { negotiateVersion } from './versions.ts';

const conf = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'calico',
    ipam: { type: 'calico-ipam' },
    ...over,
  });

const env = (over: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  ...over,
});

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err.code;
    throw err;
  }
  throw new Error('did not throw');
}

describe('request parsing', () => {
  it('parses a valid ADD', () => {
    const r = parseRequest(
      env({ CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1' }),
      conf(),
      'calico',
    );
    expect(r.command).toBe('ADD');
    expect(r.args).toMatchObject({ K8S_POD_NAMESPACE: 'shop', K8S_POD_NAME: 'web-1' });
    expect(r.path).toEqual(['/opt/cni/bin']);
    expect(r.version).toBe('1.0.0');
  });

  it.each(['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'])(
    'ADD without %s is code 4',
    (name) => {
      expect(codeOf(() => parseRequest(env({ [name]: undefined }), conf(), 'calico'))).toBe(
        CNI_ERROR.invalidEnvironment,
      );
    },
  );

  it('DEL does not need CNI_NETNS', () => {
    expect(parseRequest(env({ CNI_COMMAND: 'DEL', CNI_NETNS: undefined }), conf(), 'calico').netns).toBe('');
  });

  it('rejects an unknown command, a bad container id and a bad ifname with code 4', () => {
    expect(codeOf(() => parseRequest(env({ CNI_COMMAND: 'FROB' }), conf(), 'calico'))).toBe(4);
    expect(codeOf(() => parseRequest(env({ CNI_CONTAINERID: '-bad' }), conf(), 'calico'))).toBe(4);
    expect(codeOf(() => parseRequest(env({ CNI_IFNAME: 'a-name-longer-than-15' }), conf(), 'calico'))).toBe(
      4,
    );
  });

  it('malformed JSON is code 6 naming the problem', () => {
    try {
      parseRequest(env(), '{"cniVersion": ', 'calico');
      expect.unreachable();
    } catch (err) {
      expect((err as CniError).code).toBe(CNI_ERROR.decodingFailure);
      expect((err as CniError).details).toMatch(/not valid JSON/);
    }
  });

  it('invalid config is code 7 and lists every problem', () => {
    try {
      parseRequest(env(), conf({ name: '', mtu: 20, ipam: { type: 'host-local' } }), 'calico');
      expect.unreachable();
    } catch (err) {
      const e = err as CniError;
      expect(e.code).toBe(CNI_ERROR.invalidConfig);
      expect(e.details).toContain('name:');
      expect(e.details).toContain('mtu: 20');
      expect(e.details).toContain('ipam.type: "host-local"');
    }
  });

  it('unknown cniVersion is code 1', () => {
    expect(codeOf(() => parseRequest(env(), conf({ cniVersion: '9.9.9' }), 'calico'))).toBe(
      CNI_ERROR.incompatibleVersion,
    );
  });

  it('CNI_ARGS: unknown keys need IgnoreUnknown, malformed entries are code 4', () => {
    expect(codeOf(() => parseCniArgs('FOO=bar'))).toBe(CNI_ERROR.unsupportedField);
    expect(parseCniArgs('IgnoreUnknown=1;FOO=bar')).toEqual({ IgnoreUnknown: '1', FOO: 'bar' });
    expect(codeOf(() => parseCniArgs('novalue'))).toBe(CNI_ERROR.invalidEnvironment);
  });
});

describe('version negotiation', () => {
  it('picks the highest common version from cniVersions', () => {
    expect(negotiateVersion({ cniVersion: '0.4.0', cniVersions: ['0.4.0', '1.0.0', '1.1.0', '2.0.0'] })).toBe(
      '1.1.0',
    );
    expect(negotiateVersion({ cniVersion: '0.3.1' })).toBe('0.3.1');
  });
  it('fails with code 1 when nothing is common', () => {
    expect(codeOf(() => negotiateVersion({ cniVersions: ['2.0.0'] }))).toBe(1);
  });
});
