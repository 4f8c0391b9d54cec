import type { Extract, Pack } from 'tar-stream';

/** tar-stream's writable ends: the extractor and a packer's entry sink (streamx Writables). */
export type TarWritable = Extract | ReturnType<Pack['entry']>;

/**
 * Writes a Node stream's chunks into a tar-stream writable with backpressure and resolves once it
 * has finished (for the extractor: every entry handled). Node's pipeline does not fully understand
 * streamx streams (their late errors escape it), hence this loop. On failure the writable is
 * destroyed; for the extractor that destroys the current entry's stream too, so a file being
 * written gets closed.
 */
export async function feedWritable(input: AsyncIterable<Buffer>, writable: TarWritable): Promise<void> {
  let failure: Error | null = null;
  let finished = false;
  let wake: (() => void) | null = null;
  const signal = (): void => {
    const resume = wake;
    wake = null;
    resume?.();
  };
  // Both 'drain' and 'finish' are emitted asynchronously, after the write()/end() that arms wake.
  const waitForSignal = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  writable.on('error', (err: Error) => {
    failure ??= err;
    signal();
  });
  writable.on('drain', signal);
  writable.on('finish', () => {
    finished = true;
    signal();
  });
  try {
    for await (const chunk of input) {
      if (failure !== null) break;
      if (!writable.write(chunk)) await waitForSignal();
    }
    if (failure === null) {
      writable.end(undefined);
      while (!finished && failure === null) await waitForSignal();
    }
  } finally {
    if (!finished) writable.destroy(null);
  }
  if (failure !== null) throw failure;
}
