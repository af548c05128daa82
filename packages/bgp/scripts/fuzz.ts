/** Full fuzz run: `pnpm --filter @calico-ts/bgp run fuzz -- --count 1000000 [--seed N]`. */
import { runFuzz } from '../src/wire/fuzz.ts';

const args = process.argv.slice(2).filter((a) => a !== '--');
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const count = opt('count', 1_000_000);
const seed = opt('seed', Date.now() % 1_000_000);
const r = runFuzz({ count, seed });
process.stdout.write(
  `fuzz: seed=${seed} messages=${r.count} decoded=${r.decoded} rejected(BgpError)=${r.rejected} ` +
    `crashes=${r.crashes.length} time=${(r.elapsedMs / 1000).toFixed(2)}s\n`,
);
for (const c of r.crashes) process.stdout.write(`${c.input}\n${c.error}\n`);
process.exit(r.crashes.length ? 1 : 0);
