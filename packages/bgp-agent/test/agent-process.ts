/**
 * One node's BGP agent as its own process, for the lab tests: so a node can be killed (SIGKILL,
 * no NOTIFICATION, sockets closed by the kernel) and restarted like calico-node. It runs in our
 * namespace (etcd is on loopback here) and puts its BGP sockets and routes into the node's.
 *
 *   node --conditions=@calico-ts/source test/agent-process.ts '<json BgpAgentOptions subset>'
 *
 * SIGTERM stops it gracefully. Logs (pino JSON) go to stderr.
 */
import { EtcdDatastore } from '@calico-ts/datastore';
import { pino } from 'pino';
import { BgpAgent } from '../src/index.ts';

interface ProcessOptions {
  etcd: string;
  nodeName: string;
  netns: string;
  statusSocket: string;
  holdTime?: number;
  secretsDir?: string;
  logLevel?: string;
}

const o = JSON.parse(process.argv[2] ?? '{}') as ProcessOptions;
const logger = pino({ level: o.logLevel ?? 'info', base: { node: o.nodeName } }, pino.destination(2));
const datastore = new EtcdDatastore({ endpoints: [o.etcd] });
const agent = new BgpAgent({
  datastore,
  nodeName: o.nodeName,
  netns: o.netns,
  logger,
  statusSocket: o.statusSocket,
  holdTime: o.holdTime,
  connectRetryTime: 1,
  secretsDir: o.secretsDir,
  resyncIntervalMs: 5_000,
});
process.on('SIGTERM', () => {
  agent
    .stop()
    .then(() => datastore.close())
    .then(() => process.exit(0))
    .catch((err: unknown) => {
      logger.error({ err }, 'stop failed');
      process.exit(1);
    });
});
await agent.start();
logger.info({ status: agent.status().ready }, 'agent started');
