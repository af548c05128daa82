// biome-ignore-all lint/suspicious/noConsole: an example program prints what it did
// calicoctl's two table layouts, sized by terminal width (wide characters count 2).
//
//   node text-table.mjs
import { borderedTable, tabwriterTable } from '@calico-ts/text-table';

console.log(
  tabwriterTable([
    ['NAME', 'CIDR', 'SELECTOR'],
    ['default-ipv4-ippool', '192.168.0.0/16', 'all()'],
    ['東京-pool', '10.10.0.0/16', "zone == 'tokyo'"],
  ]),
);
console.log(
  borderedTable(
    ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
    [['198.51.100.2', 'node-to-node mesh', 'up', '04:01:07', 'Established']],
  ),
);
