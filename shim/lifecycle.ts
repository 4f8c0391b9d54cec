import { Code, TtrpcError } from '../services/ttrpc/status.js';

/** How long `start` may take between reserving a shim and the daemon's Create reaching it. */
const RESERVATION_MS = 30_000;

/**
 * Decides when a group shim exits: once it has no task and no reservation for `grace` ms, so the
 * group's next task does not race a dying shim. `berth-shim start` reserves a task id through
 * Task/Connect before printing an address; a shim that has begun exiting refuses reservations
 * (UNAVAILABLE), and `start` then launches a new shim instead. The decision and the refusal are
 * made on the single JS thread, so there is no window between them.
 */
export class Lifecycle {
  private exiting = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly reservations = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly taskCount: () => number,
    private readonly exit: () => void,
    private readonly graceMs: number,
  ) {}

  get isExiting(): boolean {
    return this.exiting;
  }

  reserve(id: string): void {
    if (this.exiting) throw new TtrpcError(Code.UNAVAILABLE, 'shim is shutting down');
    this.cancelTimer();
    clearTimeout(this.reservations.get(id));
    const expiry = setTimeout(() => {
      this.reservations.delete(id);
      this.taskRemoved();
    }, RESERVATION_MS);
    this.reservations.set(id, expiry);
  }

  /** Called when Create begins: the task now keeps the shim alive by itself. */
  taskCreated(id: string): void {
    if (this.exiting) throw new TtrpcError(Code.UNAVAILABLE, 'shim is shutting down');
    this.cancelTimer();
    clearTimeout(this.reservations.get(id));
    this.reservations.delete(id);
  }

  taskRemoved(): void {
    if (this.exiting || this.timer || !this.idle()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.idle()) this.exitNow();
    }, this.graceMs);
  }

  /** Task/Shutdown: exits at once when idle, like containerd's shim ignores it otherwise. */
  shutdown(): void {
    if (this.idle()) this.exitNow();
  }

  private idle(): boolean {
    return this.taskCount() === 0 && this.reservations.size === 0;
  }

  private exitNow(): void {
    if (this.exiting) return;
    this.exiting = true;
    this.cancelTimer();
    this.exit();
  }

  private cancelTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
