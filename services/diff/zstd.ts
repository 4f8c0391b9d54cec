import { Transform, type TransformCallback } from 'node:stream';
import { Decompress } from 'fzstd';

/** A streaming zstd decoder (fzstd) as a Node Transform. */
export function zstdDecompressor(): Transform {
  let decoder: Decompress;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      try {
        decoder.push(chunk);
        callback();
      } catch (err) {
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    },
    flush(callback: TransformCallback): void {
      try {
        decoder.push(new Uint8Array(0), true);
        callback();
      } catch (err) {
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    },
  });
  decoder = new Decompress((data: Uint8Array) => {
    if (data.length > 0) transform.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  return transform;
}
