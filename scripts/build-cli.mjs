// Bundles the berth CLI into dist/cli/berth.mjs so its start-up reads a few files instead of
// resolving hundreds of modules. Code splitting keeps each command's code (and grpc-js, protobufjs)
// in chunks that load only when that command runs: `berth --help` loads commander alone.
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;

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
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
});
