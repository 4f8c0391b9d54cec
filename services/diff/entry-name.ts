import path from 'node:path';

/**
 * The clean, root-relative form of a tar entry name: "./a/", "/a", "../../a" and "a//" all become
 * "a", and names that climb above the root are clamped at it (as containerd does), so a layer can
 * never name anything outside its target. The root itself is "".
 */
export function cleanEntryName(name: string): string {
  const normalized = path.posix.normalize(`/${name}`);
  if (normalized === '/') return '';
  return normalized.endsWith('/') ? normalized.slice(1, -1) : normalized.slice(1);
}

/** Splits a clean name into its parent ("" for the root) and last component. */
export function splitName(name: string): { parent: string; base: string } {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? { parent: '', base: name } : { parent: name.slice(0, slash), base: name.slice(slash + 1) };
}

/**
 * Where a symlink found at `linkDir` (clean name of the directory holding it) with target
 * `target` points, as a clean name: absolute targets start again at the root.
 */
export function symlinkTargetName(linkDir: string, target: string): string {
  return cleanEntryName(target.startsWith('/') ? target : `${linkDir}/${target}`);
}
