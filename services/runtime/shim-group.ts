import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/*
 * berth-shim's grouping rule, which berthd applies too so that a task whose group shim is
 * already serving joins it with one Task/Connect instead of running `berth-shim start`. Both
 * sides must agree byte for byte: shim/src/main.c computes the same key and hash.
 */

export const SANDBOX_ANNOTATION = 'io.kubernetes.cri.sandbox-id';
/**
 * Asks for a shim of the task's own. Only the bundle is visible to `berth-shim start`, so a
 * container label of this name is copied into the spec's annotations by the daemon.
 */
export const DEDICATED_ANNOTATION = 'io.berth.shim.dedicated';

interface SpecAnnotations {
  annotations?: Record<string, string>;
}

/**
 * Which tasks share one shim: all containers of a pod, else all of a namespace, unless a task asks
 * for its own. The key is prefixed so a pod id can never equal a task id or a namespace.
 */
export function groupKey(bundle: string, id: string): string {
  let annotations: Record<string, string> = {};
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as SpecAnnotations;
    annotations = spec.annotations ?? {};
  } catch {
    // No readable spec: group by namespace; Create will report the real problem.
  }
  if (annotations[DEDICATED_ANNOTATION] === 'true') return `task:${id}`;
  const sandbox = annotations[SANDBOX_ANNOTATION];
  if (sandbox) return `pod:${sandbox}`;
  return 'namespace';
}

/** The socket name for a group: like containerd, a sha256 of daemon address, namespace and key. */
export function groupHash(address: string, namespace: string, key: string): string {
  return createHash('sha256').update(`${address}\0${namespace}\0${key}`).digest('hex');
}
