/** google.protobuf.Timestamp as protobufjs takes and gives it (seconds as a number). */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

export function timestamp(date: Date): Timestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
