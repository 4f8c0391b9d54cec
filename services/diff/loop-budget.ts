/**
 * Layer apply and diff do their filesystem work with synchronous calls, chained through
 * callbacks and microtasks that never return to the event loop: a layer of thousands of small
 * files would hold the daemon's event loop for its whole duration. A LoopBudget says when the
 * current slice of work has run long enough to let the loop take a turn.
 */
export class LoopBudget {
  private sliceStart = performance.now();

  constructor(private readonly sliceMs = 10) {}

  /** Runs `next` now, or after a turn of the event loop once the slice is used up. */
  then(next: () => void): void {
    if (!this.spent()) {
      next();
      return;
    }
    setImmediate(() => {
      this.sliceStart = performance.now();
      next();
    });
  }

  /** Resolves at once, or after a turn of the event loop once the slice is used up. */
  async pause(): Promise<void> {
    if (!this.spent()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
  }

  private spent(): boolean {
    return performance.now() - this.sliceStart >= this.sliceMs;
  }
}
