import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { type Mount, withTempMount } from '../mount/mount.js';
import { type Change, overlayUpperChanges, treeChanges } from './changes.js';
import { ChangeWriter } from './change-writer.js';
import { Digester } from './digester.js';
import { LoopBudget } from './loop-budget.js';
import { overlayUpperdirOver } from './mount-layers.js';

export interface DiffOptions {
  compression: 'gzip' | 'none';
}

export interface DiffResult {
  /** Digest of the bytes written to `out` (compressed when asked). */
  digest: string;
  /** Number of bytes written to `out`. */
  size: number;
  /** Digest of the uncompressed tar. */
  diffId: string;
}

/**
 * Writes the OCI layer that turns the tree `lower` describes into the tree `upper` describes to
 * `out` (and ends it). An empty `lower` means an empty tree. When `upper` is an overlay stacked
 * exactly on `lower`'s directories, its upperdir already is the difference and is read directly;
 * otherwise both are mounted read-only and walked side by side.
 */
export async function diffMounts(lower: readonly Mount[], upper: readonly Mount[], out: NodeJS.WritableStream, opts: DiffOptions): Promise<DiffResult> {
  const upperdir = overlayUpperdirOver(lower, upper);
  if (upperdir !== null) return writeLayer(overlayUpperChanges(upperdir), upperdir, out, opts);
  return withTempMount(upper, (upperRoot) => {
    if (lower.length === 0) return writeLayer(treeChanges(null, upperRoot), upperRoot, out, opts);
    return withTempMount(lower, (lowerRoot) => writeLayer(treeChanges(lowerRoot, upperRoot), upperRoot, out, opts));
  });
}

async function writeLayer(changes: Iterable<Change>, root: string, out: NodeJS.WritableStream, opts: DiffOptions): Promise<DiffResult> {
  const pack = tar.pack();
  const writer = new ChangeWriter(pack, root);
  const budget = new LoopBudget();
  const producing = (async () => {
    try {
      for (const change of changes) {
        await writer.write(change);
        await budget.pause(); // the walk itself is synchronous
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  })();
  const tarDigest = new Digester();
  const outDigest = new Digester();
  const results = await Promise.allSettled([
    producing,
    pipeline(pack, tarDigest, opts.compression === 'gzip' ? createGzip() : new PassThrough(), outDigest, out),
  ]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return { digest: outDigest.digest(), size: outDigest.size, diffId: tarDigest.digest() };
}
