import { createRequire } from 'node:module';
import { packagePath } from '../paths.js';

/**
 * Typed wrapper over the native addon: the only importer of berth_native.node. Every function
 * throws an Error whose `code` is the errno name ('ENOENT', 'EPERM', ...) and whose message names
 * the path, like Node's own fs errors.
 */

export interface ResolvedPath {
  /** Host path of the object the name reaches; contains no symlinks. */
  path: string;
  /** st_mode of that object (type and permission bits). */
  mode: number;
}

export interface MountConstants {
  MS_RDONLY: number;
  MS_NOSUID: number;
  MS_NODEV: number;
  MS_NOEXEC: number;
  MS_SYNCHRONOUS: number;
  MS_REMOUNT: number;
  MS_MANDLOCK: number;
  MS_DIRSYNC: number;
  MS_NOATIME: number;
  MS_NODIRATIME: number;
  MS_BIND: number;
  MS_REC: number;
  MS_PRIVATE: number;
  MS_SLAVE: number;
  MS_SHARED: number;
  MS_UNBINDABLE: number;
  MS_RELATIME: number;
  MS_STRICTATIME: number;
  MNT_FORCE: number;
  MNT_DETACH: number;
  UMOUNT_NOFOLLOW: number;
}

export interface FsmountConstants {
  MOUNT_ATTR_RDONLY: number;
  MOUNT_ATTR_NOSUID: number;
  MOUNT_ATTR_NODEV: number;
  MOUNT_ATTR_NOEXEC: number;
  MOUNT_ATTR_NOATIME: number;
  MOUNT_ATTR_NODIRATIME: number;
}

interface NativeBinding {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer;
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  mount(source: string, target: string, fstype: string, flags: number, data: string | null): Promise<void>;
  umount2(target: string, flags: number): void;
  fsmount(fstype: string, source: string, target: string, params: string[], attrs: number): void;
  resolveInRoot(root: string, path: string): ResolvedPath;
  markTopDir(path: string): boolean;
  mountConstants: MountConstants;
  fsmountConstants: FsmountConstants;
}

// Found from the package root, so sources, compiled code and the berthd bundle all load it.
function addonPath(): string {
  return packagePath('native', 'addon', 'build', 'Release', 'berth_native.node');
}

const binding = createRequire(import.meta.url)(addonPath()) as NativeBinding;

/** Creates a filesystem node; `mode` includes the type (fs.constants.S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(file: string, mode: number, major: number, minor: number): void {
  binding.mknod(file, mode, major, minor);
}

/** Sets an extended attribute without following a final symlink. */
export function lsetxattr(file: string, name: string, value: Buffer, flags = 0): void {
  binding.lsetxattr(file, name, value, flags);
}

export function lgetxattr(file: string, name: string): Buffer {
  return binding.lgetxattr(file, name);
}

export function llistxattr(file: string): string[] {
  return binding.llistxattr(file);
}

export function lremovexattr(file: string, name: string): void {
  binding.lremovexattr(file, name);
}

/** mount(2) on a libuv worker: an overlay mount takes milliseconds the event loop should not wait. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string | null): Promise<void> {
  return binding.mount(source, target, fstype, flags, data);
}

export function umount2(target: string, flags: number): void {
  binding.umount2(target, flags);
}

/**
 * Mounts with the new mount API: one fsconfig call per parameter ("key=value" or a bare flag),
 * so no limit on the total option length; `attrs` are MOUNT_ATTR_* flags.
 */
export function fsmount(fstype: string, source: string, target: string, params: string[], attrs: number): void {
  binding.fsmount(fstype, source, target, params, attrs);
}

/**
 * Resolves `name` as if `root` were "/" (openat2 RESOLVE_IN_ROOT): "..", absolute names and
 * symlinks, including absolute ones, all stay inside root. Follows a final symlink.
 */
export function resolveInRoot(root: string, name: string): ResolvedPath {
  return binding.resolveInRoot(root, name);
}

/**
 * Marks a directory as the top of directory hierarchies (chattr +T) for ext4's Orlov allocator:
 * each new child directory then starts in a fresh block group rather than beside its siblings.
 * False where the filesystem has no such flag.
 */
export function markTopDir(dir: string): boolean {
  return binding.markTopDir(dir);
}

export const mountConstants: Readonly<MountConstants> = binding.mountConstants;
export const fsmountConstants: Readonly<FsmountConstants> = binding.fsmountConstants;
