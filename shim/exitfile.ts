import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the shim records for each exited process, so the daemon can report it if the shim dies. */
export interface ExitRecord {
  pid: number;
  status: number;
  signal: number;
  exitedAt: string;
}

/** `exit-init.json` for the task's init, `exit-exec-<exec id>.json` for an exec. */
export function exitFilePath(bundle: string, execId: string): string {
  return join(bundle, execId ? `exit-exec-${execId}.json` : 'exit-init.json');
}

/** Written to a temp name and renamed, so a reader sees the whole record or none. */
export function writeExitFile(bundle: string, execId: string, record: ExitRecord): void {
  const file = exitFilePath(bundle, execId);
  writeFileSync(`${file}.tmp`, JSON.stringify(record));
  renameSync(`${file}.tmp`, file);
}

export function readExitFile(bundle: string, execId: string): ExitRecord | undefined {
  try {
    return JSON.parse(readFileSync(exitFilePath(bundle, execId), 'utf8')) as ExitRecord;
  } catch {
    return undefined;
  }
}
