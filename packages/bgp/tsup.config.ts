import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', bgpd: 'src/bgpd.ts', 'agent/index': 'src/agent/index.ts' },
  format: ['esm'],
  target: 'node24',
  dts: true,
  clean: true,
  sourcemap: true,
});
