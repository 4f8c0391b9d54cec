/** containerd.types.Mount: what a client (or we) pass to mount(2) to see a snapshot. */
export interface MountSpec {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

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
