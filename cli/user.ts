import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Api } from './client.js';
import { CliError } from './errors.js';
import { withMountedSnapshot } from './mount.js';
import type { OciUser } from './spec.js';
import { DEFAULT_SNAPSHOTTER, type Mount } from './types.js';

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^\d+$/;

/** Missing files are empty databases: scratch images have no /etc/passwd. */
async function readLines(root: string, file: string): Promise<string[][]> {
  const text = await readFile(join(root, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

async function passwd(root: string): Promise<PasswdEntry[]> {
  return (await readLines(root, 'etc/passwd')).map(([name = '', , uid = '', gid = '']) => ({ name, uid: Number(uid), gid: Number(gid) }));
}

async function groups(root: string): Promise<GroupEntry[]> {
  return (await readLines(root, 'etc/group')).map(([name = '', , gid = '', members = '']) => ({
    name,
    gid: Number(gid),
    members: members ? members.split(',') : [],
  }));
}

/** What needs no look-up: empty means root, and a numeric uid:gid is taken as is. */
function numericUser(spec: string): OciUser | undefined {
  if (!spec) return { uid: 0, gid: 0 };
  const [user = '', group] = spec.split(':');
  if (NUMERIC.test(user) && group !== undefined && NUMERIC.test(group)) return { uid: Number(user), gid: Number(group) };
  return undefined;
}

/**
 * Resolves `user[:group]` (names or ids) against the image's own /etc/passwd and /etc/group, as
 * containerd's WithUser does: a numeric uid unknown to the image is allowed (gid 0), a name must
 * exist. Supplementary groups come from /etc/group membership.
 */
export async function resolveUser(api: Api, snapshotKey: string, spec: string): Promise<OciUser> {
  const direct = numericUser(spec);
  if (direct) return direct;
  const [user = '', group] = spec.split(':');
  if (!user || group === '') throw new CliError(`user "${spec}": want user[:group], names or numeric ids`);
  const { mounts = [] } = await api.unary<{ mounts?: Mount[] }>('snapshots', 'Mounts', { snapshotter: DEFAULT_SNAPSHOTTER, key: snapshotKey });
  return withMountedSnapshot(mounts, async (root) => {
    const users = await passwd(root);
    const entry = NUMERIC.test(user) ? users.find((u) => u.uid === Number(user)) : users.find((u) => u.name === user);
    if (!entry && !NUMERIC.test(user)) throw new CliError(`user "${user}" not found in the image's /etc/passwd`);
    const uid = entry?.uid ?? Number(user);
    let gid = entry?.gid ?? 0;
    const groupList = await groups(root);
    if (group !== undefined) {
      const g = NUMERIC.test(group) ? { gid: Number(group) } : groupList.find((x) => x.name === group);
      if (!g) throw new CliError(`group "${group}" not found in the image's /etc/group`);
      gid = g.gid;
    }
    const additionalGids = entry ? groupList.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid) : [];
    return additionalGids.length ? { uid, gid, additionalGids } : { uid, gid };
  });
}
