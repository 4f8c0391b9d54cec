import { invalidArgument } from './errors.js';
import { validateLabels } from './validate.js';

/**
 * containerd's update semantics for labels under a field mask: `labels` replaces them all,
 * `labels.<key>` sets one key (an empty value deletes it). Without a mask the new labels replace
 * the old ones.
 */
export function applyLabelMask(
  current: Record<string, string>,
  incoming: Record<string, string>,
  paths: readonly string[] | undefined,
): Record<string, string> {
  const next = validateLabels(incoming);
  if (!paths || paths.length === 0 || paths.includes('labels')) return dropEmpty(next);
  const result = { ...current };
  for (const path of paths) {
    if (!path.startsWith('labels.')) continue;
    const key = path.slice('labels.'.length);
    const value = next[key];
    if (value === undefined || value === '') delete result[key];
    else result[key] = value;
  }
  return result;
}

function dropEmpty(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ''));
}

/** Refuses mask paths a service does not know, naming the ones it does. */
export function checkMaskPaths(paths: readonly string[] | undefined, allowed: readonly string[]): void {
  for (const path of paths ?? []) {
    if (path === 'labels' || path.startsWith('labels.')) continue;
    if (!allowed.includes(path)) {
      throw invalidArgument(`cannot update "${path}": updatable fields are labels${allowed.length ? `, ${allowed.join(', ')}` : ''}`);
    }
  }
}
