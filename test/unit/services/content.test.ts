import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectBerthError, openTestRoot, recordEvents, sha256Of, writeBlob, type TestRoot } from './harness.js';

let t: TestRoot;
const NS = 'default';

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

const blobFile = (digest: string): string => join(t.root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));
const ingestDirs = (): string[] => readdirSync(join(t.root, 'content', 'ingest'));

async function readAll(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('ContentService writer', () => {
  it('writes chunks and commits a blob that is then visible with its info', async () => {
    const data = Buffer.from('hello, content store');
    const digest = sha256Of(data);
    const writer = await t.services.content.writer(NS, 'layer-1', data.length, digest);
    await writer.ingest.write(0, data.subarray(0, 5));
    await writer.ingest.write(5, data.subarray(5));
    expect(writer.ingest.offset).toBe(data.length);
    expect(writer.ingest.digest()).toBe(digest);
    expect(t.services.content.has(NS, digest)).toBe(false);
    expect(await writer.commit(data.length, digest, { 'containerd.io/uncompressed': 'x' })).toBe(digest);

    const info = t.services.content.info(NS, digest);
    expect(info).toMatchObject({ digest, size: data.length, labels: { 'containerd.io/uncompressed': 'x' } });
    expect(info.createdAt).toBeGreaterThan(0);
    expect(existsSync(blobFile(digest))).toBe(true);
    expect(await readAll(t.services.content.read(NS, digest))).toEqual(data);
    expect(t.services.content.list(NS).map((i) => i.digest)).toEqual([digest]);
    expect(ingestDirs()).toEqual([]);
    await expectBerthError(() => t.services.content.status(NS, 'layer-1'), 'NOT_FOUND');
  });

  it('commits without an expected digest, using the digest of what was written', async () => {
    const writer = await t.services.content.writer(NS, 'no-expect', 0, '');
    await writer.ingest.write(0, Buffer.from('abc'));
    expect(await writer.commit(0, '', {})).toBe(sha256Of('abc'));
    expect(t.services.content.info(NS, sha256Of('abc')).size).toBe(3);
  });

  it('verifies and stores a sha512 blob', async () => {
    const data = Buffer.from('a blob named by sha512');
    const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    const writer = await t.services.content.writer(NS, 'sha512-blob', data.length, digest);
    await writer.ingest.write(0, data);
    expect(writer.ingest.digest()).toBe(digest);
    expect(await writer.commit(data.length, digest, {})).toBe(digest);
    expect(t.services.content.info(NS, digest).size).toBe(data.length);
    expect(existsSync(join(t.root, 'content', 'blobs', 'sha512', digest.slice('sha512:'.length)))).toBe(true);
    expect(await readAll(t.services.content.read(NS, digest))).toEqual(data);
  });

  it('verifies a sha512 digest first named at commit', async () => {
    const data = Buffer.from('digest given late');
    const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    const writer = await t.services.content.writer(NS, 'late', 0, '');
    await writer.ingest.write(0, data);
    expect(await writer.commit(0, digest, {})).toBe(digest);
    expect(t.services.content.has(NS, digest)).toBe(true);
  });

  it('keeps content per namespace', async () => {
    const digest = await writeBlob(t.services, 'one', 'shared bytes');
    expect(t.services.content.has('one', digest)).toBe(true);
    await expectBerthError(() => t.services.content.info('two', digest), 'NOT_FOUND', `content digest ${digest}: not found`);
    // The other namespace may still write the same blob; its bytes are shared on disk.
    expect(await writeBlob(t.services, 'two', 'shared bytes')).toBe(digest);
    expect(t.services.content.info('two', digest).size).toBe(12);
  });

  it('resumes an ingest: a reopened ref continues at its offset and shows in status', async () => {
    const data = Buffer.from('0123456789abcdef');
    const digest = sha256Of(data);
    const first = await t.services.content.writer(NS, 'resume-me', data.length, digest);
    await first.ingest.write(0, data.subarray(0, 6));
    await first.release();

    const status = await t.services.content.status(NS, 'resume-me');
    expect(status).toMatchObject({ ref: 'resume-me', offset: 6, total: data.length, expected: digest });
    const listed = await t.services.content.listStatuses(NS);
    expect(listed.map((s) => [s.ref, s.offset])).toEqual([['resume-me', 6]]);
    expect(await t.services.content.listStatuses(NS, ['ref==other'])).toEqual([]);
    expect(await t.services.content.listStatuses('elsewhere')).toEqual([]);

    const second = await t.services.content.writer(NS, 'resume-me', data.length, digest);
    expect(second.ingest.offset).toBe(6);
    expect(second.ingest.startedAt).toBe(status.startedAt);
    await second.ingest.write(6, data.subarray(6));
    expect(await second.commit(data.length, digest, {})).toBe(digest);
    expect(await readAll(t.services.content.read(NS, digest))).toEqual(data);
  });

  it('resumes an ingest after a restart, with the running digest of the bytes on disk', async () => {
    const data = Buffer.from('survives a daemon restart');
    const digest = sha256Of(data);
    const first = await t.services.content.writer(NS, 'restart', data.length, digest);
    await first.ingest.write(0, data.subarray(0, 10));
    await first.release();

    const services = await t.reopen();
    expect(await services.content.status(NS, 'restart')).toMatchObject({ offset: 10, total: data.length, expected: digest });
    const second = await services.content.writer(NS, 'restart', 0, '');
    expect(second.ingest.offset).toBe(10);
    expect(second.ingest.digest()).toBe(sha256Of(data.subarray(0, 10)));
    await second.ingest.write(10, data.subarray(10));
    expect(await second.commit(0, '', {})).toBe(digest);
    expect(await readAll(services.content.read(NS, digest))).toEqual(data);
  });

  it('restarts an ingest reopened for a different expected digest', async () => {
    const first = await t.services.content.writer(NS, 'reused-ref', 0, sha256Of('first blob'));
    await first.ingest.write(0, Buffer.from('first'));
    await first.release();
    const second = await t.services.content.writer(NS, 'reused-ref', 0, sha256Of('other'));
    expect(second.ingest.offset).toBe(0);
    await second.ingest.write(0, Buffer.from('other'));
    expect(await second.commit(5, '', {})).toBe(sha256Of('other'));
  });

  it('starts from zero when an ingest has data but no readable status (a torn write)', async () => {
    const first = await t.services.content.writer(NS, 'torn', 0, sha256Of('old blob'));
    await first.ingest.write(0, Buffer.from('old'));
    await first.release();
    writeFileSync(join(t.services.content.blobs.ingestPath(NS, 'torn'), 'status.json'), '');
    await expectBerthError(() => t.services.content.status(NS, 'torn'), 'NOT_FOUND');

    const second = await t.services.content.writer(NS, 'torn', 3, sha256Of('new'));
    expect(second.ingest.offset).toBe(0);
    await second.ingest.write(0, Buffer.from('new'));
    expect(await second.commit(3, sha256Of('new'), {})).toBe(sha256Of('new'));
  });

  it('refuses a write at a wrong non-zero offset with OUT_OF_RANGE, naming the offset to resume at', async () => {
    const writer = await t.services.content.writer(NS, 'r', 0, '');
    try {
      await writer.ingest.write(0, Buffer.from('abcd'));
      await expectBerthError(() => writer.ingest.write(2, Buffer.from('xx')), 'OUT_OF_RANGE', /resume at 4/);
      await expectBerthError(() => writer.ingest.write(9, Buffer.from('xx')), 'OUT_OF_RANGE');
      expect(writer.ingest.offset).toBe(4);
    } finally {
      await writer.release();
    }
  });

  it('restarts the ingest on a write at offset 0', async () => {
    const writer = await t.services.content.writer(NS, 'r', 0, '');
    await writer.ingest.write(0, Buffer.from('stale bytes'));
    await writer.ingest.write(0, Buffer.from('fresh'));
    expect(writer.ingest.offset).toBe(5);
    expect(writer.ingest.digest()).toBe(sha256Of('fresh'));
    expect(await writer.commit(5, sha256Of('fresh'), {})).toBe(sha256Of('fresh'));
    expect(await readAll(t.services.content.read(NS, sha256Of('fresh')))).toEqual(Buffer.from('fresh'));
  });

  it('a commit with the wrong size stores nothing and discards the ingest', async () => {
    const digest = sha256Of('12345');
    const writer = await t.services.content.writer(NS, 'bad-size', 0, '');
    await writer.ingest.write(0, Buffer.from('12345'));
    await expectBerthError(() => writer.commit(6, digest, {}), 'FAILED_PRECONDITION', /size 5, expected 6/);
    expect(existsSync(blobFile(digest))).toBe(false);
    await expectBerthError(() => t.services.content.info(NS, digest), 'NOT_FOUND');
    await expectBerthError(() => t.services.content.status(NS, 'bad-size'), 'NOT_FOUND');
    expect(ingestDirs()).toEqual([]);
    // The ref is unlocked again.
    await (await t.services.content.writer(NS, 'bad-size', 0, '')).release();
  });

  it('a commit with the wrong digest stores nothing and discards the ingest', async () => {
    const wrong = sha256Of('something else');
    const writer = await t.services.content.writer(NS, 'bad-digest', 0, '');
    await writer.ingest.write(0, Buffer.from('12345'));
    await expectBerthError(() => writer.commit(5, wrong, {}), 'FAILED_PRECONDITION', /unexpected commit digest/);
    expect(existsSync(blobFile(sha256Of('12345')))).toBe(false);
    expect(existsSync(blobFile(wrong))).toBe(false);
    expect(t.services.content.list(NS)).toEqual([]);
    expect(ingestDirs()).toEqual([]);
  });

  it('checks the total and expected digest given when the writer opened', async () => {
    const expected = sha256Of('abcdef');
    const writer = await t.services.content.writer(NS, 'promised', 6, expected);
    await writer.ingest.write(0, Buffer.from('abc'));
    await expectBerthError(() => writer.commit(0, '', {}), 'FAILED_PRECONDITION', /expected 6/);
    expect(t.services.content.has(NS, expected)).toBe(false);
  });

  it('refuses a writer for an expected digest the namespace already has with ALREADY_EXISTS', async () => {
    const digest = await writeBlob(t.services, NS, 'present');
    await expectBerthError(() => t.services.content.writer(NS, 'again', 7, digest), 'ALREADY_EXISTS', `content ${digest}: already exists`);
    expect(ingestDirs()).toEqual([]);
  });

  it('refuses a second writer on a locked ref with UNAVAILABLE until the first releases', async () => {
    const first = await t.services.content.writer(NS, 'locked', 0, '');
    await expectBerthError(() => t.services.content.writer(NS, 'locked', 0, ''), 'UNAVAILABLE', /retry/);
    await expectBerthError(() => t.services.content.abort(NS, 'locked'), 'UNAVAILABLE');
    // Other refs and the same ref in another namespace are independent.
    await (await t.services.content.writer(NS, 'other', 0, '')).release();
    await (await t.services.content.writer('elsewhere', 'locked', 0, '')).release();
    await first.release();
    await (await t.services.content.writer(NS, 'locked', 0, '')).release();
  });

  it('refuses malformed refs and digests with INVALID_ARGUMENT', async () => {
    await expectBerthError(() => t.services.content.writer(NS, '', 0, ''), 'INVALID_ARGUMENT', /ingest ref/);
    await expectBerthError(() => t.services.content.writer(NS, 'r', 0, 'sha256:../../x'), 'INVALID_ARGUMENT', /digest/);
    await expectBerthError(() => t.services.content.info(NS, 'md5:abc'), 'INVALID_ARGUMENT', /unsupported algorithm/);
  });
});

describe('ContentService read, update, delete, abort', () => {
  it('reads a range by offset and size', async () => {
    const digest = await writeBlob(t.services, NS, '0123456789');
    const read = (offset: number, size: number) => readAll(t.services.content.read(NS, digest, offset, size)).then(String);
    expect(await read(0, 0)).toBe('0123456789');
    expect(await read(3, 4)).toBe('3456');
    expect(await read(7, 0)).toBe('789');
    expect(await read(8, 100)).toBe('89');
    expect(await read(10, 0)).toBe('');
    await expectBerthError(() => t.services.content.read(NS, digest, 11, 0), 'OUT_OF_RANGE', /past the end/);
    await expectBerthError(() => t.services.content.read(NS, digest, -1, 0), 'INVALID_ARGUMENT');
    await expectBerthError(() => t.services.content.read(NS, sha256Of('absent'), 0, 0), 'NOT_FOUND');
  });

  it('reads large blobs by stream and small ones whole, and a removed blob is not served from memory', async () => {
    const large = Buffer.alloc((64 << 10) + 1, 'L');
    const bigDigest = await writeBlob(t.services, NS, large.toString());
    expect((await readAll(t.services.content.read(NS, bigDigest, 1, 0))).equals(large.subarray(1))).toBe(true);
    const digest = await writeBlob(t.services, NS, 'small and read twice');
    expect(String(await readAll(t.services.content.read(NS, digest, 6, 3)))).toBe('and');
    expect(String(await readAll(t.services.content.read(NS, digest)))).toBe('small and read twice');
    await t.services.content.delete(NS, digest);
    await t.services.gc.schedule(true);
    expect(existsSync(blobFile(digest))).toBe(false);
    await expectBerthError(() => t.services.content.read(NS, digest), 'NOT_FOUND');
    // Written again, it is read from its new file.
    await writeBlob(t.services, NS, 'small and read twice');
    expect(String(await readAll(t.services.content.read(NS, digest)))).toBe('small and read twice');
  });

  it('updates labels with masks', async () => {
    const digest = await writeBlob(t.services, NS, 'labelled', { labels: { a: '1', b: '2' } });
    const content = t.services.content;
    expect(content.update(NS, digest, { c: '3' }, ['labels.c']).labels).toEqual({ a: '1', b: '2', c: '3' });
    expect(content.update(NS, digest, {}, ['labels.a']).labels).toEqual({ b: '2', c: '3' });
    expect(content.update(NS, digest, { z: '26' }, ['labels']).labels).toEqual({ z: '26' });
    expect(content.update(NS, digest, { y: '25' }).labels).toEqual({ y: '25' });
    expect(content.info(NS, digest).labels).toEqual({ y: '25' });
    expect(content.list(NS, ['labels.y==25']).map((i) => i.digest)).toEqual([digest]);
    await expectBerthError(() => content.update(NS, digest, {}, ['size']), 'INVALID_ARGUMENT', /cannot update "size"/);
    await expectBerthError(() => content.update(NS, sha256Of('nope'), { a: '1' }), 'NOT_FOUND');
  });

  it('deletes content, publishes /content/delete, and the blob file goes with the next collection', async () => {
    const digest = await writeBlob(t.services, NS, 'doomed');
    const rec = recordEvents(t.services, ['topic=="/content/delete"']);
    await t.services.content.delete(NS, digest);
    await rec.stop();
    expect(rec.topics()).toEqual([`${NS} /content/delete`]);
    await expectBerthError(() => t.services.content.info(NS, digest), 'NOT_FOUND');
    await expectBerthError(() => t.services.content.delete(NS, digest), 'NOT_FOUND');
    await t.services.gc.schedule(true);
    expect(existsSync(blobFile(digest))).toBe(false);
  });

  it('aborts an ingest', async () => {
    const writer = await t.services.content.writer(NS, 'to-abort', 0, '');
    await writer.ingest.write(0, Buffer.from('partial'));
    await writer.release();
    await t.services.content.abort(NS, 'to-abort');
    await expectBerthError(() => t.services.content.status(NS, 'to-abort'), 'NOT_FOUND');
    expect(ingestDirs()).toEqual([]);
    await expectBerthError(() => t.services.content.abort(NS, 'to-abort'), 'NOT_FOUND', /ingest ref "to-abort"/);
  });
});

describe('ContentService and leases', () => {
  it('lists content written under a lease as a lease resource', async () => {
    t.services.leases.create(NS, 'pull-1');
    const digest = await writeBlob(t.services, NS, 'leased bytes', { lease: 'pull-1' });
    expect(t.services.leases.listResources(NS, 'pull-1')).toEqual([{ id: digest, type: 'content' }]);
  });

  it('leases existing content when refusing its writer with ALREADY_EXISTS, so GC keeps it for the pull', async () => {
    const digest = await writeBlob(t.services, NS, 'already here, referenced by nothing');
    t.services.leases.create(NS, 'pull-2');
    await expectBerthError(() => t.services.content.writer(NS, 'again', 0, digest, 'pull-2'), 'ALREADY_EXISTS');
    expect(t.services.leases.listResources(NS, 'pull-2')).toEqual([{ id: digest, type: 'content' }]);
    await t.services.gc.collect();
    expect(t.services.content.has(NS, digest)).toBe(true);
  });

  it('refuses a writer under an unknown lease with NOT_FOUND before any byte is taken', async () => {
    await expectBerthError(() => t.services.content.writer(NS, 'r', 0, '', 'no-such-lease'), 'NOT_FOUND', /lease no-such-lease/);
    expect(ingestDirs()).toEqual([]);
    // The ref is not left locked.
    await (await t.services.content.writer(NS, 'r', 0, '')).release();
  });

  it('refuses a commit whose lease was deleted meanwhile with NOT_FOUND, recording no content', async () => {
    t.services.leases.create(NS, 'short');
    const writer = await t.services.content.writer(NS, 'r', 0, '', 'short');
    await writer.ingest.write(0, Buffer.from('orphaned?'));
    await t.services.leases.delete(NS, 'short');
    await expectBerthError(() => writer.commit(0, '', {}), 'NOT_FOUND', /lease short/);
    expect(t.services.content.has(NS, sha256Of('orphaned?'))).toBe(false);
    // A blob file without a row is an orphan the collector removes.
    await t.services.gc.collect();
    expect(existsSync(blobFile(sha256Of('orphaned?')))).toBe(false);
  });
});
