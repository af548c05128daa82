import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BgpdConfigError, validateBgpdConfig } from './bgpd-config.ts';

const EXAMPLE = `
routerId: 192.0.2.1
asNumber: 64512
listen: {address: "::", port: 179}
peers:
  - {address: 192.0.2.2, asNumber: 64513, password: s3cret, holdTime: 9, passive: false, routeReflectorClient: false}
originate: [10.244.1.0/26, "2001:db8:1::/64"]
kernel: {export: true, table: 254, protocol: 80}
`;

function problems(raw: unknown): string[] {
  try {
    validateBgpdConfig(raw, 'test.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(BgpdConfigError);
    return (e as BgpdConfigError).problems;
  }
  return [];
}

describe('calico-bgpd config', () => {
  it('accepts the documented example and fills defaults', () => {
    const c = validateBgpdConfig(parse(EXAMPLE));
    expect(c.peers[0]).toMatchObject({ address: '192.0.2.2', holdTime: 9, password: 's3cret' });
    expect(c.kernel).toEqual({ export: true, table: 254, protocol: 80 });
    expect(validateBgpdConfig({ routerId: '192.0.2.1', asNumber: 1 }).listen).toEqual({
      address: '::',
      port: 179,
    });
  });

  it('names the field, the value and what was expected', () => {
    const raw = parse(EXAMPLE);
    raw.peers[0].holdTime = 2;
    raw.peers[0].address = 'nope';
    raw.originate.push('10.0.0.1/8');
    raw.asNumber = 0;
    raw.extra = 1;
    const p = problems(raw);
    expect(p).toContain('peers[0].holdTime: got 2, expected 0 or 3..65535 seconds');
    expect(p).toContain('peers[0].address: got "nope", expected an IPv4 or IPv6 address');
    expect(p).toContain('originate[2]: got "10.0.0.1/8", expected a CIDR prefix with host bits zero');
    expect(p).toContain('asNumber: got 0, expected ≥ 1');
    expect(p).toContain('(root): unknown field "extra"');
    expect(problems({ asNumber: 1 })[0]).toBe('routerId: missing, expected string');
  });

  it('refuses duplicate peers', () => {
    const raw = parse(EXAMPLE);
    raw.peers.push({ ...raw.peers[0] });
    expect(problems(raw)).toEqual(['peers[1].address: got "192.0.2.2", expected each peer address once']);
  });
});
