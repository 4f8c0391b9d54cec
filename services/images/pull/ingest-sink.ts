import type { Ingest } from '../../content/store.js';
import type { BlobSink } from '../../registry/blob.js';

/** Bytes queued in memory before the download waits for the disk: bounds memory per blob. */
const HIGH_WATER = 8 << 20;

/**
 * Writes a download into its ingest in batches. While layers unpack, the event loop turns only
 * between unpack slices; one awaited write per network chunk (64 KiB) per turn would cap a
 * download at a few MB/s. Here everything that arrived while a write was in flight goes down in
 * the next single write. `offset` counts queued bytes, so a resumed request asks for what comes
 * after them; `written` reports what is on disk (what the unpack may read).
 */
export class IngestSink implements BlobSink {
  private pending: Buffer[] = [];
  private queued = 0;
  private flushing: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly ingest: Ingest,
    private readonly written: (offset: number) => void,
  ) {}

  get offset(): number {
    return this.ingest.offset + this.queued;
  }

  write(chunk: Buffer): boolean {
    if (this.failure) throw this.failure;
    this.pending.push(chunk);
    this.queued += chunk.length;
    this.kick();
    return this.queued < HIGH_WATER;
  }

  async drained(): Promise<void> {
    while (this.queued >= HIGH_WATER && this.flushing) await this.flushing;
    if (this.failure) throw this.failure;
  }

  /** Resolves when every queued byte is on disk (or rejects with the write's error). */
  async flush(): Promise<void> {
    while (this.flushing || (this.pending.length > 0 && !this.failure)) {
      this.kick();
      await this.flushing;
    }
    if (this.failure) throw this.failure;
  }

  private kick(): void {
    this.flushing ??= this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
        this.pending = [];
        await this.ingest.write(this.ingest.offset, batch);
        this.queued -= batch.length;
        this.written(this.ingest.offset);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.pending = [];
      this.queued = 0;
    }
    // Cleared in the same synchronous step as the last emptiness check: a write() after this
    // point starts a new drain.
    this.flushing = undefined;
  }
}
