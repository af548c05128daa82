/**
 * A fuzzer for the decoder: random bytes and mutations of valid messages. The decoder must
 * return a message or throw a BgpError — never anything else, never hang.
 */
import { BgpError } from './bgp-error.ts';
import { MessageFramer } from './framer.ts';
import {
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
} from './messages.ts';

export interface FuzzResult {
  count: number;
  decoded: number;
  rejected: number;
  /** Inputs that threw something other than a BgpError (must stay empty). */
  crashes: { input: string; error: string }[];
  elapsedMs: number;
}

/** A small deterministic PRNG (mulberry32) so failures replay from the seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seeds(): Uint8Array[] {
  const ctx = { fourOctetAs: true };
  return [
    encodeOpen({
      myAs: 64512,
      holdTime: 90,
      bgpId: '192.0.2.1',
      capabilities: [
        { kind: 'multiprotocol', afi: 1, safi: 1 },
        { kind: 'multiprotocol', afi: 2, safi: 1 },
        { kind: 'four-octet-as', asNumber: 64512 },
        {
          kind: 'graceful-restart',
          restarting: false,
          notification: false,
          restartTime: 120,
          families: [{ afi: 1, safi: 1, forwardingPreserved: true }],
        },
        { kind: 'add-path', entries: [{ afi: 1, safi: 1, mode: 3 }] },
        { kind: 'extended-next-hop', entries: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
      ],
    }),
    encodeUpdate(
      {
        withdrawn: [{ prefix: '240.1.0.0/16', pathId: 0 }],
        nlri: [
          { prefix: '240.0.0.1/32', pathId: 0 },
          { prefix: '198.18.0.0/15', pathId: 0 },
        ],
        attributes: {
          origin: 0,
          asPath: [
            { type: 2, asns: [65001, 4200000001] },
            { type: 1, asns: [7] },
          ],
          nextHop: '192.0.2.1',
          med: 5,
          localPref: 100,
          atomicAggregate: true,
          aggregator: { asNumber: 65001, address: '192.0.2.9' },
          communities: [1, 2],
          largeCommunities: ['1:2:3'],
          originatorId: '192.0.2.3',
          clusterList: ['192.0.2.4'],
          unknown: [{ flags: 0xe0, code: 99, value: Uint8Array.of(1, 2, 3) }],
        },
      },
      ctx,
    ),
    encodeUpdate(
      {
        withdrawn: [],
        nlri: [],
        attributes: { origin: 0, asPath: [] },
        mpReach: {
          afi: 2,
          safi: 1,
          nextHop: '2001:db8::1',
          linkLocalNextHop: 'fe80::1',
          nlri: [{ prefix: '2001:db8:1::/64', pathId: 0 }],
        },
        mpUnreach: { afi: 2, safi: 1, withdrawn: [{ prefix: '2001:db8:2::/48', pathId: 0 }] },
      },
      ctx,
    ),
    encodeEndOfRib(2, 1),
    encodeNotification(6, 2, Uint8Array.of(1, 2)),
    encodeKeepalive(),
    encodeRouteRefresh(1, 1, 1),
  ];
}

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  let b = src.slice();
  const ops = 1 + Math.floor(r() * 4);
  for (let k = 0; k < ops; k++) {
    const op = Math.floor(r() * 5);
    const i = 19 + Math.floor(r() * Math.max(1, b.length - 19));
    if (op === 0 && i < b.length) b[i] = Math.floor(r() * 256);
    else if (op === 1 && i < b.length) b[i] = b[i]! ^ (1 << Math.floor(r() * 8));
    else if (op === 2)
      b = b.slice(0, i); // truncate
    else if (op === 3) {
      const extra = new Uint8Array(1 + Math.floor(r() * 8)).map(() => Math.floor(r() * 256));
      b = Uint8Array.from([...b.subarray(0, i), ...extra, ...b.subarray(i)]);
    } else if (i < b.length) b[i] = [0, 0xff, 0x80, 0x7f, 1][Math.floor(r() * 5)]!;
  }
  // Keep the header self-consistent most of the time so the body parsers get exercised.
  if (r() < 0.9 && b.length >= 19) {
    b[16] = b.length >> 8;
    b[17] = b.length & 0xff;
  }
  return b;
}

export function runFuzz(opts: { count: number; seed?: number; timeBudgetMs?: number }): FuzzResult {
  const r = rng(opts.seed ?? 1);
  const corpus = seeds();
  const started = performance.now();
  const result: FuzzResult = { count: 0, decoded: 0, rejected: 0, crashes: [], elapsedMs: 0 };
  const contexts = [
    { fourOctetAs: true },
    { fourOctetAs: false },
    { fourOctetAs: true, addPathReceive: new Set(['1/1', '2/1']) },
  ];
  for (let n = 0; n < opts.count; n++) {
    if (opts.timeBudgetMs !== undefined && (n & 255) === 0 && performance.now() - started > opts.timeBudgetMs)
      break;
    let input: Uint8Array;
    if (r() < 0.15) {
      input = new Uint8Array(19 + Math.floor(r() * 64)).map(() => Math.floor(r() * 256));
      input.fill(0xff, 0, 16);
      input[16] = input.length >> 8;
      input[17] = input.length & 0xff;
      input[18] = 1 + Math.floor(r() * 5);
    } else {
      input = mutate(corpus[Math.floor(r() * corpus.length)]!, r);
    }
    const ctx = contexts[n % contexts.length]!;
    result.count++;
    try {
      if (n % 2 === 0) for (const f of new MessageFramer().push(input)) decodeMessage(f, ctx);
      else decodeMessage(input, ctx);
      result.decoded++;
    } catch (e) {
      if (e instanceof BgpError) result.rejected++;
      else if (result.crashes.length < 20) {
        result.crashes.push({
          input: Buffer.from(input).toString('hex'),
          error: String((e as Error)?.stack ?? e),
        });
      }
    }
  }
  result.elapsedMs = performance.now() - started;
  return result;
}
