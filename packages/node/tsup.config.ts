/**
 * Two builds:
 * - the library (`dist/index.js`, `dist/main.js` and their types), which imports the other
 *   workspace packages and third-party modules as installed, for npm consumers;
 * - the `calico-node` executable (`dist/bin.js`): one minified ESM file holding calico-node and
 *   everything it imports (workspace packages and third-party modules), so a start parses one file
 *   instead of resolving and loading a few hundred modules. What the lab, the node image and the
 *   node benches run. Kept external: the native addons (koffi, netlink), which find their binaries
 *   beside their own package. etcd3's gRPC services, which etcd3 loads from .proto files next to
 *   its own module at start-up, are parsed here at build time and embedded (see below).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig, type Options } from 'tsup';

/** An esbuild plugin, as tsup takes it. */
type Plugin = NonNullable<Options['esbuildPlugins']>[number];

/** The native addons calico-node loads: they must stay installed packages (see package.json). */
const NATIVE = ['koffi', 'netlink'];

/**
 * etcd3's connection pool calls proto-loader's `loadSync` on `${__dirname}/../proto/rpc.proto`
 * when it is first imported. In the bundle that directory does not exist, and proto-loader spends
 * most of its time building descriptors for reflection that gRPC clients never use. So the call is
 * replaced by the service definitions alone: the .proto files are parsed now (with the options
 * etcd3 passes) and embedded as JSON; at start-up protobufjs resolves that JSON and each method gets
 * the path, (de)serialisers and camel-cased name that proto-loader would give it.
 */
function etcd3ServicesFromJson(): Plugin {
  return {
    name: 'etcd3-services-from-json',
    setup(build) {
      build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const call =
          /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, (\{[^}]*\})\)/;
        const options = call.exec(source)?.[1];
        if (options === undefined) {
          throw new Error(
            `${args.path}: etcd3's loadSync call of rpc.proto not found; update tsup.config.ts`,
          );
        }
        // The copies proto-loader itself uses, so the bundle holds one protobufjs.
        const protoLoader = createRequire(createRequire(args.path).resolve('@grpc/proto-loader'));
        const protobufPath = protoLoader.resolve('protobufjs');
        const camelCasePath = protoLoader.resolve('lodash.camelcase');
        const protobuf = protoLoader(protobufPath) as {
          Root: new () => {
            loadSync(file: string, options: object): { resolveAll(): unknown; toJSON(): object };
          };
        };
        const root = new protobuf.Root().loadSync(join(dirname(args.path), '../proto/rpc.proto'), {
          keepCase: true,
        });
        root.resolveAll();
        const services = `((json, options) => {
  const protobuf = require(${JSON.stringify(protobufPath)});
  const camelCase = require(${JSON.stringify(camelCasePath)});
  const root = protobuf.Root.fromJSON(json);
  root.resolveAll();
  const serialize = (type) => (value) => type.encode(type.fromObject(value)).finish();
  const deserialize = (type) => (bytes) => type.toObject(type.decode(bytes), options);
  const definition = {};
  const visit = (namespace, prefix) => {
    for (const item of namespace.nestedArray) {
      const name = prefix ? prefix + '.' + item.name : item.name;
      if (item instanceof protobuf.Service) {
        const service = {};
        for (const method of item.methodsArray) {
          const request = method.resolvedRequestType;
          const response = method.resolvedResponseType;
          service[method.name] = {
            path: '/' + name + '/' + method.name,
            requestStream: !!method.requestStream,
            responseStream: !!method.responseStream,
            requestSerialize: serialize(request),
            requestDeserialize: deserialize(request),
            responseSerialize: serialize(response),
            responseDeserialize: deserialize(response),
            originalName: camelCase(method.name),
          };
        }
        definition[name] = service;
      } else if (item.nestedArray) {
        visit(item, name);
      }
    }
  };
  visit(root, '');
  return definition;
})(${JSON.stringify(root.toJSON())}, ${options})`;
        return { contents: source.replace(call, () => services), loader: 'js' };
      });
    },
  };
}

/**
 * zod's `z` namespace re-exports all of its ~50 message locales (a sixth of the bundle's bytes);
 * nothing here selects one (zod registers English itself), so the bundle keeps English only.
 */
function zodEnglishOnly(): Plugin {
  return {
    name: 'zod-english-only',
    setup(build) {
      build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
        contents: 'export { default as en } from "./en.js";\n',
        loader: 'js',
      }));
    },
  };
}

export default defineConfig([
  {
    entry: ['src/index.ts', 'src/main.ts'],
    format: ['esm'],
    target: 'node24',
    dts: true,
    // bin.js is the other build's output.
    clean: ['!bin.js'],
    sourcemap: true,
  },
  {
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node24',
    dts: false,
    clean: false,
    minify: true,
    splitting: false,
    sourcemap: false,
    // Everything but the native addons (tsup lets noExternal win over external).
    noExternal: [new RegExp(`^(?!(${NATIVE.join('|')})(/|$))`)],
    external: NATIVE,
    esbuildPlugins: [etcd3ServicesFromJson(), zodEnglishOnly()],
    // The workspace packages from their source, as the tests run them: the bundle never depends on
    // another package's dist/ being current.
    esbuildOptions(options) {
      options.conditions = ['@calico-ts/source'];
      // Every module shares the bundle's import.meta, so main.ts's own "run when executed" check
      // would be true as well: bin.ts alone starts calico-node.
      options.define = { ...options.define, 'import.meta.main': 'false' };
    },
    // CommonJS modules in the bundle (etcd3, gRPC, pino…) call require() for Node's built-ins and
    // use __dirname / __filename.
    banner: {
      js: [
        "import { createRequire as __calicoCreateRequire } from 'node:module';",
        "import { dirname as __calicoDirname } from 'node:path';",
        "import { fileURLToPath as __calicoFileURLToPath } from 'node:url';",
        'const require = __calicoCreateRequire(import.meta.url);',
        'const __filename = __calicoFileURLToPath(import.meta.url);',
        'const __dirname = __calicoDirname(__filename);',
      ].join('\n'),
    },
  },
]);
