import { describe, expect, it } from 'vitest';
import { type Conflist, pluginConfig } from './cni-runtime.ts';

const list: Conflist = {
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  plugins: [
    { type: 'calico', cniVersion: '0.3.1', name: 'ignored', ipam: { type: 'calico-ipam' } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
};

describe('pluginConfig (libcni per-plugin config)', () => {
  it("gives each plugin the list's name and version and keeps its own keys", () => {
    expect(JSON.parse(pluginConfig(list, list.plugins[0]!))).toEqual({
      type: 'calico',
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      ipam: { type: 'calico-ipam' },
    });
  });

  it('passes only the capability arguments a plugin declares, as runtimeConfig, and the previous result', () => {
    const caps = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: {} };
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.1/32' }] };
    expect(JSON.parse(pluginConfig(list, list.plugins[1]!, prev, caps))).toEqual({
      type: 'portmap',
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      runtimeConfig: { portMappings: caps.portMappings },
      prevResult: prev,
    });
    expect(JSON.parse(pluginConfig(list, list.plugins[0]!, undefined, caps))).not.toHaveProperty(
      'runtimeConfig',
    );
  });
});
