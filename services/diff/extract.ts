import type { Extract, Header } from 'tar-stream';
import type { FileSink, LayerWriter } from './layer-writer.js';
import { LoopBudget } from './loop-budget.js';
import { captureRawPax } from './pax-xattrs.js';

type Next = (err?: Error | null) => void;

// The part of tar-stream's entry stream (a streamx Readable) used here.
interface EntryStream {
  on(event: 'data', listener: (chunk: unknown) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: unknown) => void): unknown;
  resume(): unknown;
}

/**
 * Feeds tar-stream's entries to the writer with plain callbacks: one synchronous call per entry
 * and per data chunk, and no promise per entry, since layers hold tens of thousands of them.
 */
export function extractInto(extract: Extract, writer: LayerWriter): void {
  const takeRawPax = captureRawPax(extract);
  // tar-stream moves on to the next entry of a buffered chunk without returning to the loop.
  const budget = new LoopBudget();
  const proceed = (next: Next): void => budget.then(() => next());
  extract.on('entry', (header: Header, stream: EntryStream, next: Next) => {
    const rawPax = takeRawPax();
    // A destroyed extractor destroys the current entry's stream with the same error, which it
    // also reports itself: listening here keeps that copy from being an uncaught exception.
    stream.on('error', () => {});
    let sink: FileSink | null;
    try {
      sink = writer.entry(header, rawPax);
    } catch (err) {
      stream.resume();
      next(asError(err));
      return;
    }
    if (sink === null) {
      stream.on('end', () => proceed(next));
      stream.resume();
      return;
    }
    pump(stream, sink, () => proceed(next), next);
  });
}

/** Streams a file entry's data into its sink; calls exactly one of onEnd or onError. */
function pump(stream: EntryStream, sink: FileSink, onEnd: () => void, onError: Next): void {
  let settled = false;
  const fail = (err: unknown): void => {
    if (settled) return;
    settled = true;
    sink.abort();
    onError(asError(err));
  };
  stream.on('data', (chunk: unknown) => {
    if (settled) return;
    try {
      sink.write(chunk as Buffer); // tar-stream emits Buffers
    } catch (err) {
      fail(err);
    }
  });
  stream.on('end', () => {
    if (settled) return;
    try {
      sink.end();
    } catch (err) {
      fail(err);
      return;
    }
    settled = true;
    onEnd();
  });
  // Destroyed before its end (abort, truncated archive): the file must not stay open.
  stream.on('close', () => {
    if (!settled) {
      settled = true;
      sink.abort();
    }
  });
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
