import { describe, expect, it } from 'vitest';
import { parseBirdProtocols, torBirdConfig, torProtocolName } from './tor.ts';

describe('ToR BIRD config', () => {
  it('has one eBGP protocol per node with its own AS and the family of its address', () => {
    const conf = torBirdConfig({
      routerId: '198.51.100.1',
      asNumber: 65001,
      neighbors: [
        { name: 'lab-n1', address: '198.51.100.11', asNumber: 64512 },
        { name: 'lab-n2', address: '2001:db8::c', asNumber: 64513 },
      ],
    });
    expect(conf).toContain('router id 198.51.100.1;');
    expect(conf).toContain(
      'protocol bgp node_lab_n1 {\n  local as 65001;\n  neighbor 198.51.100.11 as 64512;\n  ipv4 { import all; export none; };\n}',
    );
    expect(conf).toContain('neighbor 2001:db8::c as 64513;\n  ipv6 {');
  });

  it('refuses an AS number out of range, naming it', () => {
    expect(() => torBirdConfig({ routerId: '1.1.1.1', asNumber: 0, neighbors: [] })).toThrow(
      'ToR AS number 0: expected 1 to 4294967295',
    );
  });

  it('reads the BGP protocols of birdc show protocols', () => {
    const out = `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     03:44:00.123  
node_lab_n1 BGP        ---        up     03:44:01.456  Established   
node_lab_n2 BGP        ---        start  03:44:01.456  Active        Socket: Connection refused
`;
    expect(parseBirdProtocols(out)).toEqual([
      { name: 'node_lab_n1', state: 'up', info: 'Established' },
      { name: 'node_lab_n2', state: 'start', info: 'Active Socket: Connection refused' },
    ]);
    expect(torProtocolName('a-b.c')).toBe('node_a_b_c');
  });
});
