import { parseSelector } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { namedPortIpsetId } from './parsed-rule.ts';
import { ipsetTypeOf, memberFamily, SelectorIndex } from './selector-index.ts';

const set = (text: string) => {
  const selector = parseSelector(text);
  return { id: selector.uniqueId, selector };
};

describe('SelectorIndex', () => {
  it('reports the members a set starts with, then label changes as deltas', () => {
    const web = set("app == 'web'");
    const index = new SelectorIndex();
    index.setItem('x/a', { labels: { app: 'web' }, profiles: [], nets: ['10.0.0.1/32'] });
    index.setItem('x/b', { labels: { app: 'db' }, profiles: [], nets: ['10.0.0.2/32'] });
    index.addIpset(web);
    expect(index.takeDeltas()).toEqual([{ id: web.id, added: ['10.0.0.1/32'], removed: [] }]);

    index.setItem('x/b', { labels: { app: 'web' }, profiles: [], nets: ['10.0.0.2/32'] });
    index.setItem('x/a', { labels: { app: 'db' }, profiles: [], nets: ['10.0.0.1/32'] });
    expect(index.takeDeltas()).toEqual([{ id: web.id, added: ['10.0.0.2/32'], removed: ['10.0.0.1/32'] }]);
    expect(index.members(web.id)).toEqual(['10.0.0.2/32']);

    // A change and its undo within one batch cancel out.
    index.setItem('x/a', { labels: { app: 'web' }, profiles: [], nets: ['10.0.0.1/32'] });
    index.setItem('x/a', { labels: { app: 'db' }, profiles: [], nets: ['10.0.0.1/32'] });
    expect(index.takeDeltas()).toEqual([]);

    index.removeItem('x/b');
    expect(index.takeDeltas()).toEqual([{ id: web.id, added: [], removed: ['10.0.0.2/32'] }]);
  });

  it('pitfall 1: != and not in match endpoints without the label, == and in do not', () => {
    const ne = set("env != 'prod'");
    const notIn = set("env not in {'prod'}");
    const eq = set("env == 'dev'");
    const inSet = set("env in {'dev'}");
    const index = new SelectorIndex();
    index.setItem('unlabelled', { labels: {}, profiles: [], nets: ['10.0.0.9/32'] });
    for (const s of [ne, notIn, eq, inSet]) index.addIpset(s);
    expect(index.members(ne.id)).toEqual(['10.0.0.9/32']);
    expect(index.members(notIn.id)).toEqual(['10.0.0.9/32']);
    expect(index.members(eq.id)).toEqual([]);
    expect(index.members(inSet.id)).toEqual([]);
  });

  it('moves endpoints when their namespace profile is relabelled', () => {
    const fromY = set('pcns.ns2 == "updated"');
    const index = new SelectorIndex();
    index.setProfileLabels('kns.y', { 'pcns.ns': 'y' });
    index.setItem('y/a', { labels: {}, profiles: ['kns.y'], nets: ['10.0.1.1/32'] });
    index.setItem('y/b', { labels: {}, profiles: ['kns.y'], nets: ['10.0.1.2/32'] });
    index.addIpset(fromY);
    expect(index.takeDeltas()).toEqual([]);
    index.setProfileLabels('kns.y', { 'pcns.ns': 'y', 'pcns.ns2': 'updated' });
    expect(index.takeDeltas()).toEqual([
      { id: fromY.id, added: ['10.0.1.1/32', '10.0.1.2/32'], removed: [] },
    ]);
    expect(index.labelsOf('y/a')).toEqual({ 'pcns.ns': 'y', 'pcns.ns2': 'updated' });
  });

  it('fills named-port sets with address,protocol:port of endpoints declaring the name for that protocol', () => {
    const all = parseSelector('all()');
    const tcpHttp = {
      id: namedPortIpsetId(all, 'tcp', 'http'),
      selector: all,
      namedPort: { name: 'http', protocol: 'tcp' as const },
    };
    const udpHttp = {
      id: namedPortIpsetId(all, 'udp', 'http'),
      selector: all,
      namedPort: { name: 'http', protocol: 'udp' as const },
    };
    const index = new SelectorIndex();
    index.setItem('x/a', {
      labels: {},
      profiles: [],
      nets: ['10.0.0.1/32'],
      ports: [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'dns', protocol: 'UDP', port: 53 },
      ],
    });
    index.setItem('x/b', {
      labels: {},
      profiles: [],
      nets: ['10.0.0.2/32'],
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    });
    index.setItem('netset', { labels: {}, profiles: [], nets: ['192.0.2.0/24'] });
    index.addIpset(tcpHttp);
    index.addIpset(udpHttp);
    expect(index.members(tcpHttp.id)).toEqual(['10.0.0.1,tcp:8080', '10.0.0.2,tcp:80']);
    expect(index.members(udpHttp.id)).toEqual([]);
    expect(index.containsAddressPort(tcpHttp.id, '10.0.0.1', 6, 8080)).toBe(true);
    expect(index.containsAddressPort(tcpHttp.id, '10.0.0.1', 17, 8080)).toBe(false);
    expect(index.containsAddressPort(tcpHttp.id, '192.0.2.7', 6, 8080)).toBe(false);
    expect(tcpHttp.id).toMatch(/^n:[A-Za-z0-9_-]{38}$/);
  });

  it('counts members contributed twice (overlapping network sets) and answers hash:net lookups', () => {
    const nets = set("kind == 'external'");
    const index = new SelectorIndex();
    index.addIpset(nets);
    index.setItem('ns1', { labels: { kind: 'external' }, profiles: [], nets: ['198.51.100.0/24'] });
    index.setItem('ns2', {
      labels: { kind: 'external' },
      profiles: [],
      nets: ['198.51.100.0/24', '203.0.113.0/24'],
    });
    index.takeDeltas();
    index.removeItem('ns1');
    expect(index.takeDeltas()).toEqual([]);
    expect(index.containsAddress(nets.id, '198.51.100.77')).toBe(true);
    expect(index.containsAddress(nets.id, '192.0.2.1')).toBe(false);
    index.removeItem('ns2');
    expect(index.takeDeltas()).toEqual([
      { id: nets.id, added: [], removed: ['198.51.100.0/24', '203.0.113.0/24'] },
    ]);
  });

  it('syncIpsets adds and removes whole sets', () => {
    const a = set("a == 'x'");
    const b = set("b == 'x'");
    const index = new SelectorIndex();
    expect(index.syncIpsets([a, b])).toEqual({ added: [a.id, b.id], removed: [] });
    expect(index.syncIpsets([b])).toEqual({ added: [], removed: [a.id] });
    expect(index.ipsetIds()).toEqual([b.id]);
  });
});

describe('IP set families and types', () => {
  it('splits members by family and types named-port sets as hash:ip,port', () => {
    const s = parseSelector('all()');
    const index = new SelectorIndex();
    index.addIpset({ id: s.uniqueId, selector: s });
    index.setItem('dual', { labels: {}, profiles: [], nets: ['10.0.0.1/32', 'fd00::1/128'] });
    expect(index.members(s.uniqueId, 4)).toEqual(['10.0.0.1/32']);
    expect(index.members(s.uniqueId, 6)).toEqual(['fd00::1/128']);
    expect(memberFamily('10.0.0.1,tcp:80')).toBe(4);
    expect(memberFamily('fd00::1,tcp:80')).toBe(6);
    expect(ipsetTypeOf({ id: s.uniqueId, selector: s })).toBe('hash:net');
    expect(ipsetTypeOf({ id: 'n:x', selector: s, namedPort: { name: 'http', protocol: 'tcp' } })).toBe(
      'hash:ip,port',
    );
  });
});
