// Bundles berthd into dist/berthd.cjs: one file instead of hundreds of modules to resolve, which
// takes about 100 ms off every start (a restart after a crash waits for it). It is CommonJS so
// that dist/berthd-launch.cjs (services/daemon/launch.ts) can run it from V8's code cache, which
// Node 20 offers for scripts only. better-sqlite3 stays external: it finds its native binding
// relative to its own package.
import { build } from 'esbuild';

const common = {
  absWorkingDir: new URL('..', import.meta.url).pathname,
  outdir: 'dist',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: { berthd: 'services/daemon/berthd.ts' },
  sourcemap: 'linked',
  external: ['better-sqlite3'],
  // The sources are ESM and find their package (the native addon, berth-shim) from
  // import.meta.url: in the bundle that is the bundle's own location.
  define: { 'import.meta.url': '__berthBundleUrl' },
  banner: { js: "const __berthBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});

await build({ ...common, entryPoints: { 'berthd-launch': 'services/daemon/launch.ts' } });
