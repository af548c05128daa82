/**
 * RFC 7606 on a live session: a crafted raw-socket sender (the one non-BIRD/GoBGP peer allowed,
 * because real speakers never send malformed UPDATEs) checks treat-as-withdraw keeps the session
 * and an unrecognised well-known attribute resets it with NOTIFICATION 3/2.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker, encodeKeepalive, encodeOpen, encodeUpdate } from '../src/index.ts';
import { freePort, RawPeer, waitFor } from './lab.ts';

const US = '127.0.5.1';
const RAW = '127.0.5.2';

describeWith([], 'RFC 7606 error handling against a crafted sender', () => {
  let speaker: BgpSpeaker;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    speaker = new BgpSpeaker({ routerId: '192.0.2.51', asNumber: 64512, listen: { address: US, port } });
    speaker.addPeer({ address: RAW, asNumber: 65005, passive: true, holdTime: 90 });
    await speaker.start();
  });

  afterAll(async () => {
    await speaker?.stop();
  });

  const state = () => speaker.status().peers[0]!.state;
  const ctx = { fourOctetAs: true };
  const attrs = { origin: 0 as const, asPath: [{ type: 2 as const, asns: [65005] }], nextHop: '192.0.2.52' };
  const prefixes = () =>
    speaker
      .routes()
      .map((r) => r.prefix)
      .sort();

  it('withdraws the routes of an UPDATE with ORIGIN=5 and keeps the session', async () => {
    const raw = RawPeer.connect(US, port, RAW);
    await waitFor('TCP up', () => raw.socket.readyState === 'open');
    raw.send(
      encodeOpen({
        myAs: 65005,
        holdTime: 90,
        bgpId: '192.0.2.52',
        capabilities: [
          { kind: 'multiprotocol', afi: 1, safi: 1 },
          { kind: 'four-octet-as', asNumber: 65005 },
        ],
      }),
    );
    await waitFor('our OPEN', () => raw.received.some((m) => m.type === 'open'));
    raw.send(encodeKeepalive());
    await waitFor('Established', () => state() === 'Established');
    raw.send(
      encodeUpdate(
        {
          withdrawn: [],
          attributes: attrs,
          nlri: [
            { prefix: '240.5.0.1/32', pathId: 0 },
            { prefix: '240.5.0.2/32', pathId: 0 },
          ],
        },
        ctx,
      ),
    );
    await waitFor('two routes', () => prefixes().length === 2);
    const bad = encodeUpdate(
      { withdrawn: [], attributes: attrs, nlri: [{ prefix: '240.5.0.1/32', pathId: 0 }] },
      ctx,
    );
    // ORIGIN is the first attribute: header 19 + withdrawn len 2 + attr len 2 + flags/type/len 3.
    expect([bad[23], bad[24], bad[25]]).toEqual([0x40, 1, 1]);
    bad[26] = 5;
    raw.send(bad);
    await waitFor('240.5.0.1/32 withdrawn', () => prefixes().join() === '240.5.0.2/32');
    raw.send(encodeKeepalive());
    expect(state()).toBe('Established');
    expect(raw.received.some((m) => m.type === 'notification')).toBe(false);
    expect(raw.closed).toBe(false);

    // An unrecognised well-known attribute is not repairable: NOTIFICATION 3/2 and reset.
    const reset = encodeUpdate(
      { withdrawn: [], attributes: attrs, nlri: [{ prefix: '240.5.0.3/32', pathId: 0 }] },
      ctx,
    );
    const withAttr = new Uint8Array(reset.length + 3);
    withAttr.set(reset.subarray(0, 23));
    withAttr.set([0x40, 99, 0], 23); // well-known (not optional) type 99, empty
    withAttr.set(reset.subarray(23), 26);
    const attrLen = ((reset[21]! << 8) | reset[22]!) + 3;
    withAttr[21] = attrLen >> 8;
    withAttr[22] = attrLen & 0xff;
    withAttr[16] = withAttr.length >> 8;
    withAttr[17] = withAttr.length & 0xff;
    raw.send(withAttr);
    const n = await waitFor('NOTIFICATION', () => raw.received.find((m) => m.type === 'notification'));
    expect(n).toMatchObject({ type: 'notification', code: 3, subcode: 2 });
    await waitFor(
      'session reset and routes gone',
      () => state() !== 'Established' && prefixes().length === 0,
    );
    expect(speaker.status().peers[0]!.lastError).toMatch(/UNRECOGNIZED_WELL_KNOWN/);
    raw.socket.destroy();
  });

  it('answers a bad OPEN with the RFC 4271 §6.2 NOTIFICATION: wrong AS 2/2, hold time 1 2/6', async () => {
    for (const [myAs, holdTime, subcode] of [
      [65099, 90, 2],
      [65005, 1, 6],
    ] as const) {
      const raw = RawPeer.connect(US, port, RAW);
      await waitFor('TCP up', () => raw.socket.readyState === 'open');
      raw.send(
        encodeOpen({
          myAs,
          holdTime,
          bgpId: '192.0.2.52',
          capabilities: [{ kind: 'four-octet-as', asNumber: myAs }],
        }),
      );
      const n = await waitFor('NOTIFICATION', () => raw.received.find((m) => m.type === 'notification'));
      expect(n).toMatchObject({ code: 2, subcode });
      await waitFor('closed', () => raw.closed);
      expect(state()).not.toBe('Established');
    }
  });
});
