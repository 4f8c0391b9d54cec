/**
 * Work shared between concurrent pulls in this daemon: the first caller for a key runs it, the
 * others await the same promise, so a layer two pulls need is fetched (or unpacked) once.
 */
export class Inflight {
  private readonly running = new Map<string, Promise<void>>();

  /** Runs `work` unless it already runs for `key`; `shared` tells the caller which happened. */
  run(key: string, work: () => Promise<void>): { done: Promise<void>; shared: boolean } {
    const existing = this.running.get(key);
    if (existing) return { done: existing, shared: true };
    const done = work().finally(() => this.running.delete(key));
    this.running.set(key, done);
    return { done, shared: false };
  }
}
