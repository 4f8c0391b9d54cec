// Bundles the berth CLI into dist/cli/berth.mjs so its start-up reads a few files instead of
// resolving hundreds of modules. Code splitting keeps each command's code (and grpc-js, protobufjs)
// in chunks that load only when that command runs: `berth --help` loads commander alone.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
// protobufjs loads long.js when it can, and long.js compiles a WebAssembly module at load (tens of
// ms per CLI start). We decode 64-bit integers as numbers (services/server/protos.ts: longs:
// Number), for which protobufjs needs no Long class: it falls back to numbers when "long" fails
// to load, so the bundle gets a module that throws instead.
const withoutLong = {
  name: 'without-long',
  setup(b) {
    b.onResolve({ filter: /^long$/ }, () => ({ path: 'long', namespace: 'without-long' }));
    b.onLoad({ filter: /.*/, namespace: 'without-long' }, () => ({
      contents: "throw new Error('long.js is left out of the berth CLI bundle');",
      loader: 'js',
    }));
  },
};

// Chunk names carry content hashes: drop the previous build's so stale chunks do not pile up.
rmSync(join(root, 'dist/cli/chunks'), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: { berth: 'cli/berth.ts' },
  outdir: 'dist/cli',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
  // CommonJS dependencies (grpc-js, protobufjs) call require() for Node built-ins; an ESM bundle
  // has no require of its own, so give every output file one.
  plugins: [withoutLong],
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
});
