import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 50;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock file or returns false; a lock whose owner died is broken and retaken. */
function tryLock(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let owner = NaN;
  try {
    owner = Number(readFileSync(path, 'utf8'));
  } catch {
    return false; // released meanwhile: retry
  }
  // An empty file is a lock being written right now; only a dead owner's lock is stale.
  if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
    try {
      unlinkSync(path);
    } catch {
      // another waiter broke it first
    }
  }
  return false;
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL create, owner pid inside). Serialises
 * concurrent `berth-shim start` runs of one group so only one of them launches its shim.
 */
export async function withLock<T>(path: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (!tryLock(path)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path}`);
    await sleep(POLL_MS);
  }
  try {
    return await fn();
  } finally {
    unlinkSync(path);
  }
}
