import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { CliError } from './errors.js';

/**
 * Unpacks an image archive (OCI layout or docker-archive) into `dir`. Only regular files and
 * directories with relative names that stay inside `dir` are taken: an image archive has no use
 * for links or devices, and refusing them means nothing in it can point outside `dir`.
 */
export async function extractArchive(file: string, dir: string): Promise<void> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const extract = tar.extract();
  const consume = (async () => {
    for await (const entry of extract) {
      const name = normalize(entry.header.name);
      if (name.startsWith('..') || name.startsWith('/')) throw new CliError(`archive ${file}: entry "${entry.header.name}" points outside the archive`);
      const target = join(dir, name);
      if (entry.header.type === 'directory') {
        await mkdir(target, { recursive: true });
        entry.resume();
      } else if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target, { mode: 0o600 }));
      } else {
        entry.resume();
      }
    }
  })();
  await Promise.all([pipeline(input, extract), consume]);
}

/** A tar writer whose entries are added one after another, streaming each body. */
export class ArchiveWriter {
  readonly #pack = tar.pack();
  readonly #done: Promise<void>;

  constructor(file: string) {
    this.#done = pipeline(this.#pack, file === '-' ? process.stdout : createWriteStream(file, { mode: 0o644 }));
  }

  add(name: string, size: number, body: Buffer | AsyncIterable<Buffer>): Promise<void> {
    // Fixed mtime and owner: exporting the same images twice gives the same bytes.
    const header = { name, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 };
    return new Promise((resolve, reject) => {
      const sink = this.#pack.entry(header, (err) => (err ? reject(err) : resolve()));
      pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : Readable.from(body), sink).catch(reject);
    });
  }

  async finish(): Promise<void> {
    this.#pack.finalize();
    await this.#done;
  }
}
