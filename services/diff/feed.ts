import type { Extract } from 'tar-stream';

/**
 * Writes a Node stream's chunks into tar-stream's extractor (a streamx Writable, whose late errors
 * escape Node's pipeline) with backpressure, and resolves once every entry was handled. On
 * failure the extractor is destroyed, which destroys the current entry's stream too, so a file
 * being written gets closed.
 */
export async function feedExtract(input: AsyncIterable<Buffer>, extract: Extract): Promise<void> {
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
  extract.on('error', (err: Error) => {
    failure ??= err;
    signal();
  });
  extract.on('drain', signal);
  extract.on('finish', () => {
    finished = true;
    signal();
  });
  try {
    for await (const chunk of input) {
      if (failure !== null) break;
      if (!extract.write(chunk)) await waitForSignal();
    }
    if (failure === null) {
      extract.end(undefined);
      while (!finished && failure === null) await waitForSignal();
    }
  } finally {
    if (!finished) extract.destroy(null);
  }
  if (failure !== null) throw failure;
}
