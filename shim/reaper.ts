import { closeSync } from 'node:fs';
import { processNative, type ExitStatus } from '../services/native/addon.js';

/** Exits reaped before anyone asked for them are kept this long for a late track(). */
const UNCLAIMED_TTL_MS = 60_000;

/**
 * Collects every exit in the shim. The shim is a child subreaper, so container processes become
 * its children once the runtime that created them exits. libuv reaps only what child_process
 * spawned; those pids are excluded here, never waited for with waitpid(-1). A tracked process is
 * watched through its pidfd; every other adopted child is reaped on SIGCHLD so none stays a zombie.
 * An exit reaped that way before its pid was tracked (a detached exec that ends before the runtime
 * returns) is kept and handed over when track() is called.
 */
export class Reaper {
  private readonly libuvChildren = new Set<number>();
  private readonly tracked = new Set<number>();
  private readonly unclaimed = new Map<number, { status: ExitStatus; at: number }>();

  constructor() {
    processNative.setChildSubreaper();
    process.on('SIGCHLD', () => this.reapOrphans());
  }

  /** Registers a child_process child so orphan reaping leaves it to libuv. */
  spawned(pid: number | undefined, exited: Promise<unknown>): void {
    if (pid === undefined) return;
    this.libuvChildren.add(pid);
    void exited.finally(() => this.libuvChildren.delete(pid));
  }

  /** Resolves with the exit of `pid`, a child of this shim (adopted or not yet exited). */
  track(pid: number): Promise<ExitStatus> {
    const early = this.claim(pid);
    if (early) return Promise.resolve(early);
    let pidfd: number;
    try {
      pidfd = processNative.pidfdOpen(pid);
    } catch (err) {
      // ESRCH: gone and reaped in between; the orphan reaper has its status.
      const late = this.claim(pid);
      if (late) return Promise.resolve(late);
      return Promise.reject(err);
    }
    this.tracked.add(pid);
    return new Promise((resolve, reject) => {
      const collect = (): void => {
        let status: ExitStatus | null;
        try {
          status = processNative.waitidPidfd(pidfd);
        } catch (err) {
          this.tracked.delete(pid);
          closeSync(pidfd);
          reject(err);
          return;
        }
        // A readable pidfd means exited; null would be a spurious wakeup, so watch again.
        if (status === null) {
          new processNative.FdWatch(pidfd, collect);
          return;
        }
        this.tracked.delete(pid);
        closeSync(pidfd);
        resolve(status);
      };
      new processNative.FdWatch(pidfd, collect);
    });
  }

  private claim(pid: number): ExitStatus | undefined {
    const entry = this.unclaimed.get(pid);
    if (!entry) return undefined;
    this.unclaimed.delete(pid);
    return entry.status;
  }

  private reapOrphans(): void {
    const exclude = [...this.libuvChildren, ...this.tracked];
    const now = Date.now();
    for (const status of processNative.reapOrphans(exclude)) this.unclaimed.set(status.pid, { status, at: now });
    for (const [pid, entry] of this.unclaimed) if (now - entry.at > UNCLAIMED_TTL_MS) this.unclaimed.delete(pid);
  }
}
