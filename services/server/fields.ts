import type { MountSpec } from '../snapshots/types.js';

/** Readers for fields of decoded request messages, where proto3 leaves zero values unset. */
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** containerd.types.Mount list of a request. */
export function mountsOf(value: unknown): MountSpec[] {
  return ((value ?? []) as Partial<MountSpec>[]).map((m) => ({ type: m.type ?? '', source: m.source ?? '', options: m.options ?? [] }));
}
