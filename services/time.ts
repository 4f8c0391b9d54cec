/** google.protobuf.Timestamp as our handlers exchange it. */
export interface Timestamp {
  seconds?: number;
  nanos?: number;
}

/** Go's zero time, which gogo's non-nullable timestamps put on the wire for "unset". */
const GO_ZERO_SECONDS = -62135596800;

export function toTimestamp(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Milliseconds since the epoch, or undefined for an absent or Go-zero timestamp. */
export function fromTimestamp(ts: Timestamp | undefined | null): number | undefined {
  if (!ts) return undefined;
  const seconds = ts.seconds ?? 0;
  if (seconds === GO_ZERO_SECONDS || (seconds === 0 && !ts.nanos)) return undefined;
  return seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}
