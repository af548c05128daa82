import { describe, expect, it } from 'vitest';
import {
  affinityName,
  blockNameFromCidr,
  cidrFromBlockName,
  keyFor,
  parseAffinityName,
  refFromKey,
  resolveKindAlias,
} from './kinds.ts';

describe('key layout', () => {
  it('puts v3 resources under Calico paths', () => {
    expect(keyFor('IPPool', 'default-ipv4-ippool')).toBe(
      '/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool',
    );
    expect(keyFor('NetworkPolicy', 'allow', 'prod')).toBe(
      '/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow',
    );
    expect(() => keyFor('NetworkPolicy', 'allow')).toThrow(/namespace/);
  });

  it('puts IPAM objects under /calico/ipam/v2 and reads them back', () => {
    const b4 = keyFor('IPAMBlock', blockNameFromCidr('10.244.1.64/26'));
    expect(b4).toBe('/calico/ipam/v2/assignment/ipv4/block/10.244.1.64-26');
    expect(refFromKey(b4)).toEqual({ kind: 'IPAMBlock', name: '10-244-1-64-26' });
    const b6 = keyFor('IPAMBlock', blockNameFromCidr('fd00:1::40/122'));
    expect(b6).toBe('/calico/ipam/v2/assignment/ipv6/block/fd00:1::40-122');
    const a = keyFor('BlockAffinity', affinityName('node-1-2', '10.0.0.0/26'));
    expect(a).toBe('/calico/ipam/v2/host/node-1-2/ipv4/block/10.0.0.0-26');
    expect(refFromKey(a)).toEqual({ kind: 'BlockAffinity', name: 'node-1-2-10-0-0-0-26' });
    expect(keyFor('IPAMHandle', 'k8s-pod-network.abc')).toBe('/calico/ipam/v2/handle/k8s-pod-network.abc');
  });

  it('round-trips block names for both families', () => {
    for (const cidr of [
      '10.0.0.0/26',
      '192.168.255.192/26',
      'fd00::/122',
      '2001:db8:0:1::1c0/122',
      '::/122',
    ]) {
      expect(cidrFromBlockName(blockNameFromCidr(cidr))).toBe(cidr);
    }
    expect(parseAffinityName('a-b-c-fd00-0-0-0-0-0-0-0-122')).toEqual({ node: 'a-b-c', cidr: 'fd00::/122' });
    expect(parseAffinityName('10-0-0-0-26')).toBeUndefined();
  });

  it('resolves calicoctl kind spellings', () => {
    expect(resolveKindAlias('ipp')).toBe('IPPool');
    expect(resolveKindAlias('GlobalNetworkPolicies')).toBe('GlobalNetworkPolicy');
    expect(resolveKindAlias('wep')).toBe('WorkloadEndpoint');
    expect(resolveKindAlias('nope')).toBeUndefined();
  });

  it('ignores keys it does not own', () => {
    expect(refFromKey('/calico/v1/config/Foo')).toBeUndefined();
    expect(refFromKey('/calico/resources/v3/projectcalico.org/ippools/a/b')).toBeUndefined();
  });
});
