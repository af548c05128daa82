import { describe, expect, it } from 'vitest';
import { parseDeviceFeatures, setDeviceFeatures } from './ethtool.ts';

describe('parseDeviceFeatures', () => {
  it('reads features and sub-features of `ethtool -k`, with [fixed]', () => {
    const out = [
      'Features for vxlan.calico:',
      'rx-checksumming: on',
      'tx-checksumming: on',
      '\ttx-checksum-ipv4: off [fixed]',
      '\ttx-checksum-ip-generic: on',
      'tcp-segmentation-offload: off',
      '\ttx-tcp-segmentation: off [requested on]',
      'generic-receive-offload: on',
      '',
    ].join('\n');
    const f = parseDeviceFeatures(out);
    expect(f.get('tx-checksum-ip-generic')).toEqual({ on: true, fixed: false });
    expect(f.get('tx-checksum-ipv4')).toEqual({ on: false, fixed: true });
    expect(f.get('tx-tcp-segmentation')).toEqual({ on: false, fixed: false });
    expect(f.get('generic-receive-offload')).toEqual({ on: true, fixed: false });
    expect(f.has('Features for vxlan.calico')).toBe(false);
  });
});

describe('setDeviceFeatures', () => {
  it('rejects a feature name ethtool would read as another argument, naming it', async () => {
    await expect(setDeviceFeatures('vxlan.calico', { 'tx off': true })).rejects.toThrow(
      /feature name "tx off" is not an ethtool feature name/,
    );
  });
});
