import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * What must hold for a daemon root after any crash and restart: SQLite is intact, every row's file
 * exists, and no file exists without its row (no partial blob, no orphan snapshot directory).
 */
export function storeProblems(root: string): string[] {
  const db = new Database(join(root, 'metadata.db'), { readonly: true, fileMustExist: true });
  const problems: string[] = [];
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') problems.push(`integrity_check: ${String(integrity)}`);
    const digests = new Set((db.prepare('SELECT DISTINCT digest FROM content').all() as { digest: string }[]).map((r) => r.digest));
    const blobsDir = join(root, 'content', 'blobs', 'sha256');
    for (const d of digests) if (!existsSync(join(blobsDir, d.slice('sha256:'.length)))) problems.push(`content row ${d} has no blob`);
    for (const hex of readdirSync(blobsDir)) if (!digests.has(`sha256:${hex}`)) problems.push(`blob ${hex} has no content row`);
    const ids = new Set((db.prepare('SELECT id FROM snapshots').all() as { id: number }[]).map((r) => String(r.id)));
    const snapDir = join(root, 'snapshots', 'overlayfs');
    for (const id of ids) if (!existsSync(join(snapDir, id, 'fs'))) problems.push(`snapshot row ${id} has no directory`);
    // Layers are staged in spread/ (see OverlayLayout): nothing may be left there either.
    for (const name of readdirSync(snapDir)) if (!ids.has(name) && name !== 'spread') problems.push(`snapshot directory ${name} has no row`);
    for (const name of readdirSync(join(snapDir, 'spread'))) problems.push(`staged layer directory ${name} was left behind`);
  } finally {
    db.close();
  }
  return problems;
}
