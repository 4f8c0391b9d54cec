import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

/**
 * Starts berthd's bundle (dist/berthd.cjs, which `npm ci` builds beside this launcher) from V8's
 * code cache. Node 20 caches no compiled code across runs by itself; parsing and compiling the
 * ~1.3 MB bundle and the functions a start runs took ~40 ms of every start (180 → 140 ms to the
 * first answered call), and a restart after a crash waits for it while tasks go unsupervised.
 *
 * The cache is written beside the bundle a second after a start that had none (or had one V8
 * refused: it checks the source and V8's version and flags): by then berthd serves, so the cache
 * holds the functions a start compiles, and even a short-lived berthd leaves one behind. It is
 * only ever an optimisation: any failure to read or write it is ignored. It lives in the package
 * directory, as root-owned as the bundle whose code it stands for.
 */
const CACHE_AFTER_MS = 1000;

// Run as `node dist/berthd-launch.cjs`: argv[1] is this file.
const dir = dirname(process.argv[1] ?? '.');
const bundle = join(dir, 'berthd.cjs');
// BERTHD_CODE_CACHE moves it, for an install whose package directory is read-only.
const cacheFile = process.env.BERTHD_CODE_CACHE || `${bundle}.cache`;

function readCache(): Buffer | undefined {
  try {
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

function writeCache(script: Script): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cacheFile);
  } catch {
    // A read-only install runs without a cache.
    rmSync(tmp, { force: true });
  }
}

const cachedData = readCache();
// The same wrapper Node's CommonJS loader puts around a module.
const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, 'utf8')}\n})`;
const script = new Script(source, { filename: bundle, ...(cachedData ? { cachedData } : {}) });
const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
const module = { exports: {} };
run(module.exports, createRequire(bundle), module, bundle, dir);
if (!cachedData || script.cachedDataRejected === true) setTimeout(() => writeCache(script), CACHE_AFTER_MS).unref();
