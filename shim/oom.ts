import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processNative, type FdWatch } from '../services/native/addon.js';

const MEMORY_ROOT = '/sys/fs/cgroup/memory';

/** The v1 memory cgroup directory of `pid`, or undefined (cgroup v2, no memory controller). */
function memoryCgroup(pid: number): string | undefined {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  for (const line of lines) {
    const [, controllers, path] = line.split(':');
    if (controllers?.split(',').includes('memory') && path !== undefined) return join(MEMORY_ROOT, path);
  }
  return undefined;
}

/**
 * cgroup v1 OOM notifications for one task: an eventfd registered with the memory cgroup's
 * `cgroup.event_control` against `memory.oom_control` counts the cgroup's OOM events. (cgroup v2's
 * memory.events is not watched yet.) The kernel also signals the eventfd when the cgroup is
 * removed, so the owner closes the watcher, after a last check(), before deleting the task.
 */
export class OomWatcher {
  private watch: FdWatch | undefined;

  private constructor(
    private readonly eventFd: number,
    private readonly controlFd: number,
    private readonly onOom: () => void,
  ) {
    this.arm();
  }

  /** Watches the memory cgroup of `pid`; undefined where there is none to watch. */
  static forPid(pid: number, onOom: () => void): OomWatcher | undefined {
    const dir = memoryCgroup(pid);
    if (!dir) return undefined;
    const controlFd = openSync(join(dir, 'memory.oom_control'), 'r');
    let eventFd: number | undefined;
    try {
      eventFd = processNative.eventfd();
      writeFileSync(join(dir, 'cgroup.event_control'), `${eventFd} ${controlFd}`);
      return new OomWatcher(eventFd, controlFd, onOom);
    } catch (err) {
      if (eventFd !== undefined) closeSync(eventFd);
      closeSync(controlFd);
      throw err;
    }
  }

  /** Reports OOM events counted so far; run before closing so none is lost to ordering. */
  check(): void {
    const counter = Buffer.alloc(8);
    try {
      if (readSync(this.eventFd, counter) === 8 && counter.readBigUInt64LE() > 0n) this.onOom();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }

  close(): void {
    this.watch?.close();
    this.watch = undefined;
    closeSync(this.eventFd);
    closeSync(this.controlFd);
  }

  private arm(): void {
    this.watch = new processNative.FdWatch(this.eventFd, () => {
      this.check();
      this.arm();
    });
  }
}
