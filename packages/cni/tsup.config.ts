import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from 'tsup';

type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number];

/**
 * The plugin binaries are copied out of the package (to /opt/cni/bin, possibly on a host without
 * node_modules), so each is one self-contained file: the shim and the few small modules it
 * imports. Only the standalone path may reach datastore/IPAM/kernel code, and it does so through
 * `import("./standalone.js")`, kept as that literal so the installer can point it at this
 * package's dist/ when it copies the shim elsewhere (see src/install.ts).
 */
const shimOnly: EsbuildPlugin = {
  name: 'calico-cni-shim-only',
  setup(build) {
    build.onResolve({ filter: /^\.\/standalone\.ts$/ }, () => ({ path: './standalone.js', external: true }));
    // Importing a Node built-in has no side effect, so an import whose bindings tree-shaking dropped
    // (server.ts's `node:net`, reached for DEFAULT_AGENT_SOCKET) goes too instead of loading it.
    build.onResolve({ filter: /^node:/ }, (args) => ({
      path: args.path,
      external: true,
      sideEffects: false,
    }));
    // Anything else from outside the package would be missing where the binaries are installed.
    build.onResolve({ filter: /^[^./]/ }, (args) => ({
      errors: [{ text: `${args.path} (imported by ${args.importer}) must not reach the plugin binaries` }],
    }));
  },
};

/** The two plugin binaries; tests build these into a temp dir (test/cni-fixture.ts). */
export const pluginBinaries: Options = {
  // Absolute, so that builds started from elsewhere (tests, bench) find them.
  entry: {
    calico: fileURLToPath(new URL('src/bin/calico.ts', import.meta.url)),
    'calico-ipam': fileURLToPath(new URL('src/bin/calico-ipam.ts', import.meta.url)),
  },
  // CommonJS, not ESM: an ESM entry makes Node set up its ESM loader first, ~10–15 ms of every
  // plugin call (measured: README "Start-up"). The installed copies carry no extension and sit
  // where no package.json says "module", so Node runs them as CommonJS too.
  format: ['cjs'],
  target: 'node24',
  platform: 'node',
  // One file per binary: no chunk shared between the two (it would have to be installed too).
  splitting: false,
  // Leave every bare specifier to the plugin above: tsup's own would mark `node:` ones and the
  // package's dependencies external before it sees them.
  removeNodeProtocol: false,
  noExternal: [/.*/],
  esbuildPlugins: [shimOnly],
  sourcemap: false,
  clean: false,
};

export default defineConfig([
  {
    entry: ['src/index.ts', 'src/standalone.ts'],
    format: ['esm'],
    target: 'node24',
    dts: { entry: 'src/index.ts' },
    // The two configs build in parallel: this one empties dist/ but leaves the binaries to the other.
    clean: ['!calico.cjs', '!calico-ipam.cjs'],
    sourcemap: true,
  },
  pluginBinaries,
]);
