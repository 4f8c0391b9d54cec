import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runOk } from './exec.js';
import { scratchDir } from './scratch.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface TreeEntry {
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only. */
  size?: number;
  /** Regular files only: "sha256:<hex>" of the content. */
  sha256?: string;
  /** Symlinks only. */
  target?: string;
  /** Device nodes only: "major:minor". */
  rdev?: string;
  /** Regular files sharing an inode with another path of the tree: the smallest such path. */
  hardlinkGroup?: string;
  /** Whole seconds; compared only when asked (see compareTrees). */
  mtime: number;
}

/** Relative path (no leading "./") → entry, for everything below the root (not the root). */
export type Tree = Map<string, TreeEntry>;

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface ExpectedTree {
  dir: string;
  remove(): Promise<void>;
}

interface Member {
  name: string;
  /** Directory members are stored with a trailing slash, which `tar -t` shows. */
  isDir: boolean;
}

/** The layer's members; literal quoting so non-ASCII names come out as they are. */
async function layerMembers(layer: string): Promise<Member[]> {
  const r = await runOk('tar', ['--quoting-style=literal', '-tf', layer], { timeoutMs: 300_000 });
  return r.stdout
    .split('\n')
    .filter((n) => n.length > 0)
    .map((n) => ({ name: n.replace(/^\.\//, '').replace(/\/$/, ''), isDir: n.endsWith('/') }))
    .filter((m) => m.name !== '' && m.name !== '.');
}

/**
 * GNU tar writes through symlinks already on disk, so a member below a symlink (from a lower
 * layer or this one) could land outside `root`, where OCI semantics would resolve it inside.
 * Such layers are refused rather than extracted wrongly or onto the host.
 */
async function assertNoSymlinkAncestors(root: string, members: readonly Member[]): Promise<void> {
  const nonDirs = new Set(members.filter((m) => !m.isDir).map((m) => m.name));
  const checked = new Set<string>();
  for (const { name } of members) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      if (checked.has(ancestor)) continue;
      checked.add(ancestor);
      const st = await lstat(join(root, ancestor)).catch(() => undefined);
      if (nonDirs.has(ancestor) || st?.isSymbolicLink()) {
        throw new Error(`expectedTree: ${name} lies below non-directory ${ancestor}; not supported`);
      }
    }
  }
}

/** A non-directory replaces a lower directory whole; GNU tar would refuse a non-empty one. */
async function removeReplacedDirs(root: string, members: readonly Member[]): Promise<void> {
  for (const m of members) {
    if (m.isDir || basename(m.name).startsWith(WHITEOUT)) continue;
    const st = await lstat(join(root, m.name)).catch(() => undefined);
    if (st?.isDirectory()) await rm(join(root, m.name), { recursive: true, force: true });
  }
}

/** Applies the layer's whiteouts to what the lower layers put in `root`. */
async function applyWhiteouts(root: string, members: readonly Member[]): Promise<void> {
  for (const { name } of members) {
    const base = basename(name);
    if (!base.startsWith(WHITEOUT)) continue;
    const parent = join(root, dirname(name));
    if (base === OPAQUE) {
      const children = await readdir(parent).catch(() => []);
      await Promise.all(children.map((c) => rm(join(parent, c), { recursive: true, force: true })));
    } else {
      await rm(join(parent, base.slice(WHITEOUT.length)), { recursive: true, force: true });
    }
  }
}

/**
 * What a correct unpacker produces from `layers` (blob paths, bottom first; gzip, zstd or plain
 * tar): each layer is extracted with GNU tar over the previous ones after its whiteouts (".wh.x"
 * deletes x, ".wh..wh..opq" empties its dir) have been applied to the lower content, as the OCI
 * image spec says. Layers that write below a symlink are refused (see assertNoSymlinkAncestors).
 */
export async function expectedTree(layers: readonly string[]): Promise<ExpectedTree> {
  const dir = await scratchDir('tree-');
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    for (const layer of layers) {
      const members = await layerMembers(layer);
      await assertNoSymlinkAncestors(dir, members);
      await applyWhiteouts(dir, members);
      await removeReplacedDirs(dir, members);
      const flags = ['--numeric-owner', '--same-owner', '--same-permissions', `--exclude=${WHITEOUT}*`];
      await runOk('tar', ['-xf', layer, '-C', dir, ...flags], { timeoutMs: 300_000 });
    }
  } catch (e) {
    await remove();
    throw e;
  }
  return { dir, remove };
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(`sha256:${h.digest('hex')}`));
  });
}

type Stats = Awaited<ReturnType<typeof lstat>>;

function typeOf(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

async function entryOf(path: string, st: Stats): Promise<TreeEntry> {
  const type = typeOf(st);
  const e: TreeEntry = { type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtime: Math.floor(Number(st.mtimeMs) / 1000) };
  if (type === 'file') {
    e.size = Number(st.size);
    e.sha256 = await sha256File(path);
  } else if (type === 'symlink') {
    e.target = await readlink(path);
  } else if (type === 'char' || type === 'block') {
    const rdev = Number(st.rdev);
    e.rdev = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff)}`;
  }
  return e;
}

/**
 * Describes every entry below `root` without following symlinks. Hardlinks are recorded as
 * groups of paths sharing an inode inside the tree, named by their smallest path, so two trees
 * with the same link structure compare equal whatever their inode numbers.
 */
export async function snapshotTree(root: string): Promise<Tree> {
  const tree: Tree = new Map();
  const inodes = new Map<string, string[]>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, relPath);
      const st = await lstat(abs);
      tree.set(relPath, await entryOf(abs, st));
      if (st.isFile() && Number(st.nlink) > 1) {
        const key = `${st.dev}:${st.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), relPath]);
      }
      if (st.isDirectory()) await walk(relPath);
    }
  };
  await walk('');
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue;
    const group = [...paths].sort()[0];
    for (const p of paths) {
      const e = tree.get(p);
      if (e) e.hardlinkGroup = group;
    }
  }
  return tree;
}

export interface CompareOptions {
  /** Also compare mtimes (off by default: unpackers differ on directory mtimes). */
  mtime?: boolean;
  /** Paths (relative, with descendants) left out of the comparison, e.g. mount points. */
  ignore?: readonly string[];
}

const FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev', 'hardlinkGroup'] as const;

function show(field: string, v: unknown): string {
  return field === 'mode' && typeof v === 'number' ? `0${v.toString(8)}` : String(v);
}

/**
 * Differences between `expected` and `actual`, one human-readable line per entry and field,
 * in path order. An empty list means the trees match.
 */
export function compareTrees(expected: Tree, actual: Tree, opts: CompareOptions = {}): string[] {
  const ignored = (p: string): boolean => (opts.ignore ?? []).some((i) => p === i || p.startsWith(`${i}/`));
  const fields: readonly (keyof TreeEntry)[] = opts.mtime ? [...FIELDS, 'mtime'] : FIELDS;
  const paths = [...new Set([...expected.keys(), ...actual.keys()])].filter((p) => !ignored(p)).sort();
  const diffs: string[] = [];
  for (const p of paths) {
    const want = expected.get(p);
    const got = actual.get(p);
    if (!got) diffs.push(`${p}: missing`);
    else if (!want) diffs.push(`${p}: unexpected ${got.type}`);
    else {
      for (const f of fields) {
        if (want[f] !== got[f]) diffs.push(`${p}: ${f} ${show(f, got[f])}, expected ${show(f, want[f])}`);
      }
    }
  }
  return diffs;
}
