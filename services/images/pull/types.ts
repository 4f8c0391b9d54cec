import type { Platform } from '../../registry/platform.js';

export interface PullOptions {
  /** Platforms to pull; the host's when empty. */
  platforms?: Platform[];
  /** Fetch every manifest of an index; only `platforms` (or the host's) are unpacked. */
  allPlatforms?: boolean;
  /** Plain HTTP for this registry (ctr --plain-http); loopback registries fall back to it anyway. */
  plainHttp?: boolean;
  /** Unpack layers into snapshots; true unless false. */
  unpack?: boolean;
  snapshotter?: string;
  signal?: AbortSignal;
}

export type LayerStatus = 'waiting' | 'downloading' | 'downloaded' | 'unpacking' | 'unpacked' | 'exists';

export interface LayerProgress {
  digest: string;
  mediaType: string;
  offset: number;
  total: number;
  status: LayerStatus;
}

export type ProgressListener = (progress: LayerProgress) => void;
