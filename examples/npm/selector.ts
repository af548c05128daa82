// biome-ignore-all lint/suspicious/noConsole: an example program prints what it did
// Calico's selector language: parse once, evaluate against label sets, print the canonical form.
//
//   node selector.ts "role == 'db' && has(tier) && env in {'prod', 'staging'}"
import { type Labels, parseSelector, SelectorParseError } from '@calico-ts/datastore';

const pods: { name: string; labels: Labels }[] = [
  { name: 'db-0', labels: { role: 'db', tier: 'backend', env: 'prod' } },
  { name: 'db-test', labels: { role: 'db', env: 'test' } },
  { name: 'web-0', labels: { role: 'web', tier: 'frontend', env: 'prod' } },
];

try {
  const selector = parseSelector(process.argv[2] ?? "role == 'db'");
  const matching = pods.filter((pod) => selector.evaluate(pod.labels)).map((pod) => pod.name);
  console.log(JSON.stringify({ selector: selector.toString(), matching }));
} catch (err) {
  if (!(err instanceof SelectorParseError)) throw err;
  console.error(err.message);
  process.exitCode = 1;
}
