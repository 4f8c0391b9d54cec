import type { Extract, Header } from 'tar-stream';
import type { FileSink, LayerWriter } from './layer-writer.js';

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
  extract.on('entry', (header: Header, stream: EntryStream, next: Next) => {
    // A destroyed extractor destroys the current entry's stream with the same error, which it
    // also reports itself: listening here keeps that copy from being an uncaught exception.
    stream.on('error', () => {});
    let sink: FileSink | null;
    try {
      sink = writer.entry(header);
    } catch (err) {
      stream.resume();
      next(asError(err));
      return;
    }
    if (sink === null) {
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    pump(stream, sink, next);
  });
}

function pump(stream: EntryStream, sink: FileSink, next: Next): void {
  let done = false;
  const fail = (err: unknown): void => {
    if (done) return;
    done = true;
    sink.abort();
    next(asError(err));
  };
  stream.on('data', (chunk: unknown) => {
    if (done) return;
    try {
      sink.write(chunk as Buffer); // tar-stream emits Buffers
    } catch (err) {
      fail(err);
    }
  });
  stream.on('end', () => {
    if (done) return;
    try {
      sink.end();
      done = true;
      next();
    } catch (err) {
      fail(err);
    }
  });
  // Destroyed before its end (abort, truncated archive): the file must not stay open.
  stream.on('close', () => {
    if (!done) {
      done = true;
      sink.abort();
    }
  });
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
