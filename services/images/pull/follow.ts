import { open, type FileHandle } from 'node:fs/promises';

/**
 * Reads a file while another task appends to it: the download writes a layer into its content
 * ingest and the unpack reads the same bytes back (from the page cache) as they land. Tailing
 * the ingest rather than teeing the HTTP stream means retries, Range resumes and bytes left by
 * an earlier interrupted pull all reach the unpack unchanged, and a slow unpack never holds the
 * download back.
 */
export class GrowingFile {
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    private written: number,
  ) {}

  /** Opens the file now: the ingest is renamed into the blob store at commit and the fd survives that. */
  static async open(path: string, written: number): Promise<GrowingFile> {
    return new GrowingFile(path, await open(path, 'r'), written);
  }

  /** The writer appended up to `offset`. */
  grew(offset: number): void {
    this.written = offset;
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(err: Error): void {
    this.failure = err;
    this.notify();
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The file's bytes from the start, as they arrive; one reader at a time. */
  async *chunks(): AsyncIterable<Buffer> {
    const chunk = 1 << 20;
    let pos = 0;
    for (;;) {
      if (this.failure) throw this.failure;
      if (pos < this.written) {
        const buf = Buffer.allocUnsafe(Math.min(chunk, this.written - pos));
        const { bytesRead } = await this.handle.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw new Error(`${this.path}: file shorter than the ${this.written} bytes written`);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
