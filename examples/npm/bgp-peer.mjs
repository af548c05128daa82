// biome-ignore-all lint/suspicious/noConsole: an example program prints what it did
// A BGP speaker peering with a router (BIRD, FRR, GoBGP…): announces one prefix and prints every
// best-path change as a JSON line until SIGINT/SIGTERM, then closes the session with a Cease.
//
//   PEER_ADDRESS=127.0.1.41 PEER_PORT=179 PEER_AS=65001 LOCAL_ADDRESS=127.0.1.42 node bgp-peer.mjs
import { BgpSpeaker } from '@calico-ts/bgp';

/** @type {(name: string, fallback: string) => string} */
const env = (name, fallback) => process.env[name] ?? fallback;
const speaker = new BgpSpeaker({
  routerId: env('ROUTER_ID', '192.0.2.42'),
  asNumber: Number(env('LOCAL_AS', '64512')),
  listen: false, // connect out only
});
speaker.addPeer({
  address: env('PEER_ADDRESS', '127.0.0.1'),
  port: Number(env('PEER_PORT', '179')),
  asNumber: Number(env('PEER_AS', '65001')),
  localAddress: process.env.LOCAL_ADDRESS,
  connectRetryTime: 1,
});
speaker.originate(env('ANNOUNCE', '198.18.7.0/24'));

speaker.on('peer-state', ({ address, to }) => console.log(JSON.stringify({ peer: address, state: to })));
speaker.on('best-path', (changes) => {
  for (const { prefix, best } of changes) {
    console.log(
      JSON.stringify({ prefix, nextHop: best?.attrs.nextHop ?? null, withdrawn: best === undefined }),
    );
  }
});

await speaker.start();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await speaker.stop();
    console.log(JSON.stringify({ stopped: true }));
  });
}
