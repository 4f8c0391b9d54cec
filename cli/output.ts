import type { Timestamp } from './types.js';

/** Prints `rows` under `headers` in columns padded to the widest cell, like ctr's tabwriter. */
export function printTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  process.stdout.write([headers, ...rows].map(line).join('\n') + '\n');
}

/** One JSON document per invocation, so `berth ... --json | jq` always parses. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Timestamps travel as {seconds, nanos}; containerd's "unset" is year 1 (api.md §1.1). */
export function toDate(ts: Timestamp | undefined): Date | undefined {
  if (!ts?.seconds || ts.seconds <= 0) return undefined;
  return new Date(ts.seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
}

export function isoTime(ts: Timestamp | undefined): string {
  return toDate(ts)?.toISOString() ?? '';
}

/** "3 minutes ago", the way people read ages in listings. */
export function age(ts: Timestamp | undefined, now = Date.now()): string {
  const date = toDate(ts);
  if (!date) return '-';
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  const steps: Array<[number, string]> = [
    [86_400, 'day'],
    [3_600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, name] of steps) {
    const n = Math.floor(seconds / size);
    if (n > 0) return `${n} ${name}${n === 1 ? '' : 's'} ago`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'} ago`;
}

export function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '-';
}
