// Bundles berthd into dist/berthd.mjs: one file instead of hundreds of modules to resolve, which
// takes about 100 ms off every start (a restart after a crash waits for it). better-sqlite3 stays
// external: it finds its native binding relative to its own package.
import { build } from 'esbuild';

await build({
  absWorkingDir: new URL('..', import.meta.url).pathname,
  entryPoints: { berthd: 'services/daemon/berthd.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  external: ['better-sqlite3'],
  // CommonJS dependencies (grpc-js, protobufjs) call require(); an ESM bundle needs one of its own.
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
});
