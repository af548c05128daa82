import { expect, it } from 'vitest';
import { runFuzz } from './fuzz.ts';

it('decodes random and mutated messages without crashing (bounded to ~3 s)', () => {
  const r = runFuzz({ count: 200_000, seed: Number(process.env['FUZZ_SEED'] ?? 42), timeBudgetMs: 3000 });
  expect(r.crashes).toEqual([]);
  expect(r.count).toBeGreaterThan(1_000); // a loaded CI box still gets through thousands
  expect(r.decoded).toBeGreaterThan(0);
  expect(r.rejected).toBeGreaterThan(0);
});
