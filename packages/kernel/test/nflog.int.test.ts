import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  decodePacketHeaders,
  deleteNamespace,
  execInNamespace,
  Netlink,
  type NetNamespace,
  type NflogPacket,
  NflogReader,
  waitFor,
} from '../src/index.ts';

const prefix = runPrefix('kn');

describeWith([root(), command('iptables'), command('ping')], 'nflog reader', () => {
  let ns: NetNamespace;
  let reader: NflogReader | undefined;

  beforeAll(async () => {
    ns = await createNamespace(`${prefix}-nflog`);
    const nl = Netlink.open(ns);
    try {
      await nl.setLink('lo', { up: true });
    } finally {
      nl.close();
    }
  });

  afterAll(async () => {
    reader?.close();
    await deleteNamespace(ns.name);
  });

  it('receives each logged packet with the rule prefix, the hook and its decoded headers', async () => {
    reader = await NflogReader.open({ namespace: ns, groups: [7, 8] });
    const got: NflogPacket[] = [];
    reader.on('packet', (p) => got.push(p));
    const add = await execInNamespace(ns, 'iptables', [
      '-A',
      'OUTPUT',
      '-p',
      'icmp',
      '--icmp-type',
      '8',
      '-j',
      'NFLOG',
      '--nflog-group',
      '8',
      '--nflog-prefix',
      'DI3|np/x/deny-all',
    ]);
    expect(add.exitCode, add.stderr).toBe(0);
    const ping = await execInNamespace(ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '127.0.0.1']);
    expect(ping.exitCode, ping.stderr).toBe(0);
    await waitFor(() => got.length >= 2, { timeoutMs: 5000, intervalMs: 10, what: 'two nflog records' });
    expect(got).toHaveLength(2);
    for (const p of got) {
      expect(p.group).toBe(8);
      expect(p.prefix).toBe('DI3|np/x/deny-all');
      expect(p.hook).toBe(3); // NF_INET_LOCAL_OUT
      expect(p.hwProtocol).toBe(0x0800);
      expect(decodePacketHeaders(p.payload)).toMatchObject({
        family: 4,
        protocol: 1,
        srcIp: '127.0.0.1',
        dstIp: '127.0.0.1',
        icmpType: 8,
        icmpCode: 0,
      });
    }
  });

  it('refuses a group another socket in the namespace has bound, naming it', async () => {
    await expect(NflogReader.open({ namespace: ns, groups: [8] })).rejects.toThrow(/nflog group 8/);
  });
});
