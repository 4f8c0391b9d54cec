import { Transform, type TransformCallback } from 'node:stream';
import { Decompress } from 'fzstd';
import { LoopBudget } from './loop-budget.js';

// fzstd decodes in JavaScript on the calling thread (tens of MB/s): a 1 MiB read decoded in one
// go holds the event loop for hundreds of milliseconds, so input goes in small pieces with the
// loop getting its turns in between.
const PIECE = 64 * 1024;

/** A streaming zstd decoder (fzstd) as a Node Transform. */
export function zstdDecompressor(): Transform {
  const budget = new LoopBudget();
  let decoder: Decompress;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      decodePieces(chunk).then(() => callback(), (err: unknown) => callback(asError(err)));
    },
    flush(callback: TransformCallback): void {
      try {
        decoder.push(new Uint8Array(0), true);
        callback();
      } catch (err) {
        callback(asError(err));
      }
    },
  });
  decoder = new Decompress((data: Uint8Array) => {
    if (data.length > 0) transform.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  async function decodePieces(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; offset += PIECE) {
      if (transform.destroyed) return;
      decoder.push(chunk.subarray(offset, offset + PIECE));
      await budget.pause();
    }
  }
  return transform;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
