import { describe, expect, it } from 'vitest';
import { goShortFloat, renderUtilization } from './ipam-output.ts';

describe('ipam show output', () => {
  it('writes numbers as Go’s %.5g does', () => {
    expect([0, 8, 64, 65536, 65531, 99999, 100000, 1048576, 2 ** 80, 2 ** 80 - 7].map(goShortFloat)).toEqual([
      '0',
      '8',
      '64',
      '65536',
      '65531',
      '99999',
      '1e+05',
      '1.0486e+06',
      '1.2089e+24',
      '1.2089e+24',
    ]);
  });

  it('prints calicoctl’s utilisation grid for IPv4 and IPv6 pools with their blocks, then blocks in no pool', () => {
    const out = renderUtilization(
      [
        {
          name: 'v4',
          cidr: '10.65.0.0/16',
          blockSize: 26,
          capacity: 65536,
          inUse: 5,
          blocks: [{ cidr: '10.65.79.0/26', affinity: 'host:a', capacity: 64, inUse: 5, free: 59 }],
        },
        {
          name: 'v6',
          cidr: 'fd5f:abcd:64::/48',
          blockSize: 122,
          capacity: 2 ** 80,
          inUse: 7,
          blocks: [
            {
              cidr: 'fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0/122',
              affinity: 'host:a',
              capacity: 64,
              inUse: 7,
              free: 57,
            },
          ],
        },
      ],
      true,
      [{ cidr: '10.99.0.0/26', affinity: 'host:a', capacity: 64, inUse: 1, free: 63 }],
    );
    expect(out.split('\n')).toEqual([
      '+----------+-------------------------------------------+------------+------------+-------------------+',
      '| GROUPING |                   CIDR                    | IPS TOTAL  | IPS IN USE |     IPS FREE      |',
      '+----------+-------------------------------------------+------------+------------+-------------------+',
      '| IP Pool  | 10.65.0.0/16                              |      65536 | 5 (0%)     | 65531 (100%)      |',
      '| Block    | 10.65.79.0/26                             |         64 | 5 (8%)     | 59 (92%)          |',
      '| IP Pool  | fd5f:abcd:64::/48                         | 1.2089e+24 | 7 (0%)     | 1.2089e+24 (100%) |',
      '| Block    | fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0/122 |         64 | 7 (11%)    | 57 (89%)          |',
      '| Block    | 10.99.0.0/26                              |         64 | 1 (2%)     | 63 (98%)          |',
      '+----------+-------------------------------------------+------------+------------+-------------------+',
      '',
    ]);
  });
});
