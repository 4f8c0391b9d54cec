import fs from 'node:fs';
import type { Mount } from '../mount/mount.js';

function option(m: Mount, name: string): string | undefined {
  const prefix = `${name}=`;
  return m.options.find((o) => o.startsWith(prefix))?.slice(prefix.length);
}

/**
 * The layer directories a mount stack shows, topmost first: a bind mount shows its source, an
 * overlay its upperdir (if any) over its lowerdirs. Null when the stack is anything else.
 */
export function layerDirs(mounts: readonly Mount[]): string[] | null {
  if (mounts.length === 0) return [];
  const [m] = mounts;
  if (mounts.length !== 1 || m === undefined) return null;
  if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) return [m.source];
  if (m.type !== 'overlay') return null;
  const lowers = (option(m, 'lowerdir') ?? '').split(':').filter((d) => d !== '');
  const upper = option(m, 'upperdir');
  return upper === undefined ? lowers : [upper, ...lowers];
}

/**
 * The upperdir of `upper` when it is an overlay whose lowerdirs are exactly the layers `lower`
 * shows: then the upperdir holds precisely the changes from lower to upper.
 */
export function overlayUpperdirOver(lower: readonly Mount[], upper: readonly Mount[]): string | null {
  const [m] = upper;
  if (upper.length !== 1 || m === undefined || m.type !== 'overlay' || !selfContainedUpper(m)) return null;
  const upperdir = option(m, 'upperdir');
  const lowerLayers = layerDirs(lower);
  const upperLayers = layerDirs(upper);
  if (upperdir === undefined || lowerLayers === null || upperLayers === null || lowerLayers.length === 0) return null;
  const below = upperLayers.slice(1);
  return below.length === lowerLayers.length && below.every((dir, i) => dir === lowerLayers[i]) ? upperdir : null;
}

/**
 * Whether the overlay's upperdir holds whole copies of what changed. With redirect_dir or
 * metacopy on, a renamed directory or a chmod-ed file is only a pointer into a lower layer, and
 * the upperdir alone no longer is the diff. Unset options take the overlay module's defaults.
 */
function selfContainedUpper(m: Mount): boolean {
  const redirect = option(m, 'redirect_dir') ?? (moduleDefault('redirect_dir') ? 'on' : 'off');
  const metacopy = option(m, 'metacopy') ?? (moduleDefault('metacopy') ? 'on' : 'off');
  return redirect !== 'on' && metacopy !== 'on';
}

function moduleDefault(parameter: string): boolean {
  try {
    return fs.readFileSync(`/sys/module/overlay/parameters/${parameter}`, 'utf8').trim() === 'Y';
  } catch {
    return false; // no overlay module: no overlay mount exists whose upperdir could hold redirects
  }
}
