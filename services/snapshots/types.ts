export type { Mount as MountSpec } from '../mount/mount.js';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export interface SnapshotUsage {
  size: number;
  inodes: number;
}
