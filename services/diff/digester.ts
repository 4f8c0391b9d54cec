import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A pass-through that hashes (sha256) and counts the bytes flowing through it. */
export class Digester extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  /** "sha256:<hex>" of everything seen; call once, after the stream ended. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}
