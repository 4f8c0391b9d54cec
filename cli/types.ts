/**
 * The CLI's view of the containerd messages it reads, as services/server/protos.ts decodes them:
 * snake_case fields, 64-bit integers as numbers, enums by name, bytes as Buffer, and proto3
 * defaults omitted (so every scalar may be absent).
 */

export interface Timestamp {
  seconds?: number;
  nanos?: number;
}

export interface Descriptor {
  media_type?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
}

export interface Mount {
  type: string;
  source: string;
  target?: string;
  options?: string[];
}

export interface AnyMessage {
  type_url?: string;
  value?: Buffer;
}

export interface Image {
  name: string;
  labels?: Record<string, string>;
  target: Descriptor;
  created_at?: Timestamp;
  updated_at?: Timestamp;
}

export interface ContentInfo {
  digest: string;
  size?: number;
  created_at?: Timestamp;
  updated_at?: Timestamp;
  labels?: Record<string, string>;
}

export interface SnapshotInfo {
  name: string;
  parent?: string;
  kind?: 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';
  created_at?: Timestamp;
  updated_at?: Timestamp;
  labels?: Record<string, string>;
}

export interface Container {
  id: string;
  labels?: Record<string, string>;
  image?: string;
  runtime?: { name?: string; options?: AnyMessage };
  spec?: AnyMessage;
  snapshotter?: string;
  snapshot_key?: string;
  created_at?: Timestamp;
  updated_at?: Timestamp;
}

export type TaskStatus = 'UNKNOWN' | 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED' | 'PAUSING';

export interface Process {
  container_id?: string;
  id?: string;
  pid?: number;
  status?: TaskStatus;
  terminal?: boolean;
  exit_status?: number;
  exited_at?: Timestamp;
}

export interface Namespace {
  name: string;
  labels?: Record<string, string>;
}

export interface Plugin {
  type?: string;
  id?: string;
  platforms?: Array<{ os?: string; architecture?: string; variant?: string }>;
  capabilities?: string[];
  init_err?: { code?: number; message?: string };
}

export interface Envelope {
  timestamp?: Timestamp;
  namespace?: string;
  topic?: string;
  event?: AnyMessage;
}

export interface LayerProgress {
  digest: string;
  media_type?: string;
  offset?: number;
  total?: number;
  status?: string;
}

export interface PullProgress {
  layer?: LayerProgress;
  image?: Image;
}

/** What the Any type URL of a JSON-encoded OCI runtime spec is (api.md §3). */
export const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
export const PROCESS_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
export const DEFAULT_SNAPSHOTTER = 'overlayfs';
