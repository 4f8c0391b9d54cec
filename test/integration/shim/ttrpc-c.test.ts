import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeMessage, messageType } from '../../../services/server/protos.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type RequestEnvelope } from '../../../services/ttrpc/envelope.js';
import {
  Code,
  encodeFrame,
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  MAX_PAYLOAD,
  TtrpcClient,
  TtrpcError,
  TtrpcServer,
  type CallContext,
} from '../../../services/ttrpc/index.js';

/*
 * The C shim's ttrpc (shim/src/ttrpc.c), protobuf writer (pb.c) and SHA-256 against berthd's
 * TypeScript ttrpc, through shim/tests/ttrpc-echo.c. The peer is built with ASan and UBSan, and
 * every test fails if it reported anything.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCES = ['shim/tests/ttrpc-echo.c', 'shim/src/pb.c', 'shim/src/sha256.c', 'shim/src/ttrpc.c', 'native/common/util.c'];
const CFLAGS = ['-std=gnu11', '-O1', '-g', '-Wall', '-Wextra', '-Werror=implicit-function-declaration', '-D_GNU_SOURCE', '-pthread'];
const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
const ECHO = 'berth.test.Echo';
const TASK = 'containerd.task.v2.Task';
const RESOURCE_EXHAUSTED = 8;

const schema = protobuf.parse(
  `syntax = "proto3";
   package berth.test;
   message EchoRequest { bytes data = 1; string key = 2; uint32 sleep_ms = 3; uint32 code = 4; string message = 5; uint32 size = 6; }
   message EchoResponse { bytes data = 1; string value = 2; }
   message Timestamp { int64 seconds = 1; int32 nanos = 2; }
   message Any { string type_url = 1; bytes value = 2; }
   message Sample {
     uint64 u = 1; int64 neg = 2; int32 neg32 = 3; bool yes = 4; string s = 5; bytes b = 6;
     Timestamp before_epoch = 7; Timestamp epoch = 8; Any any = 9; Sample empty = 10;
     uint64 d11 = 11; int64 d12 = 12; bool d13 = 13; string d14 = 14; bytes d15 = 15;
   }`,
  { keepCase: true },
).root;
const EchoRequest = schema.lookupType('berth.test.EchoRequest');
const EchoResponse = schema.lookupType('berth.test.EchoResponse');
const Sample = schema.lookupType('berth.test.Sample');

interface EchoReq {
  data?: Buffer;
  key?: string;
  sleep_ms?: number;
  code?: number;
  message?: string;
  size?: number;
}
interface EchoRes {
  data?: Buffer;
  value?: string;
}

let buildDir: string;
let bin: string;
let dir: string;
let sock: string;
let children: { child: ChildProcess; stderr: string[] }[];
let clients: TtrpcClient[];
let servers: (TtrpcServer | net.Server)[];

beforeAll(() => {
  buildDir = mkdtempSync(join(tmpdir(), 'berth-ttrpc-c-build-'));
  bin = join(buildDir, 'ttrpc-echo');
  execFileSync('cc', [...CFLAGS, ...SANITIZE, '-Inative/common', '-Ishim/src', '-o', bin, ...SOURCES], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
});

afterAll(() => rmSync(buildDir, { recursive: true, force: true }));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-ttrpc-c-'));
  sock = join(dir, 'sock');
  children = [];
  clients = [];
  servers = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await (s instanceof TtrpcServer ? s.close() : new Promise((r) => s.close(r)));
  for (const { child } of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const reports = children.map((c) => c.stderr.join('')).filter((e) => /Sanitizer|runtime error/.test(e));
  expect(reports).toEqual([]);
});

const ENV = { ...process.env, ASAN_OPTIONS: 'abort_on_error=0:detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' };

/** Starts `ttrpc-echo serve` on `sock` and resolves once it listens. */
function startEcho(): Promise<ChildProcess> {
  const child = spawn(bin, ['serve', sock], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  const stderr: string[] = [];
  children.push({ child, stderr });
  child.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => (b.toString() === 'ready\n' ? resolve(child) : reject(new Error(`unexpected output ${b.toString()}`))));
    child.once('exit', (code) => reject(new Error(`ttrpc-echo exited ${code}: ${stderr.join('')}`)));
  });
}

/** Runs the C client: one call per payload on one connection, one output line per call. */
function cCall(socket: string, service: string, method: string, timeoutMs: number, metadata: Record<string, string>, payloads: Buffer[]): Promise<string[]> {
  const md = Object.entries(metadata).flatMap(([k, v]) => ['-m', `${k}=${v}`]);
  const args = ['call', socket, service, method, String(timeoutMs), ...md, ...payloads.map((p) => p.toString('hex'))];
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { env: ENV }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}: ${stderr}`));
      else resolve(stdout.trimEnd().split('\n'));
    });
    children.push({ child, stderr: [] });
    child.stderr!.on('data', (b: Buffer) => children.find((c) => c.child === child)!.stderr.push(b.toString()));
  });
}

async function connect(): Promise<TtrpcClient> {
  const client = await TtrpcClient.connect(sock);
  clients.push(client);
  return client;
}

function echoCall(client: TtrpcClient, method: string, req: EchoReq, opts = {}): Promise<EchoRes> {
  return client.call<EchoRes>(ECHO, method, EchoRequest, EchoResponse, req, opts);
}

function rejection(p: Promise<unknown>): Promise<TtrpcError> {
  return p.then(
    () => {
      throw new Error('call unexpectedly succeeded');
    },
    (e: unknown) => e as TtrpcError,
  );
}

function echoFrame(streamId: number, method: string, req: EchoReq, envelope: Partial<RequestEnvelope> = {}): Buffer {
  const payload = encodeMessage(EchoRequest, req);
  return encodeFrame(streamId, FrameType.Request, encodeRequest({ service: ECHO, method, payload, timeoutNano: 0, metadata: {}, ...envelope }));
}

interface Answer {
  streamId: number;
  code: number;
  message: string;
  payload: Buffer;
}

/** A raw connection to the C server: writes bytes as given and collects decoded responses. */
class RawConn {
  readonly answers: Answer[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private readonly socket: net.Socket) {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        const res = decodeResponse(f.payload);
        this.answers.push({ streamId: f.streamId, code: res.status?.code ?? 0, message: res.status?.message ?? '', payload: res.payload });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(path: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('error', reject);
      socket.once('connect', () => resolve(new RawConn(socket)));
    });
  }

  write(...bytes: Buffer[]): void {
    for (const b of bytes) this.socket.write(b);
  }

  /** Resolves once `n` answers arrived in all. */
  async until(n: number): Promise<Answer[]> {
    while (this.answers.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.answers;
  }

  close(): void {
    this.socket.destroy();
  }
}

function oversizedHeader(streamId: number, type: number = FrameType.Request): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32BE(MAX_PAYLOAD + 10, 0);
  header.writeUInt32BE(streamId, 4);
  header.writeUInt8(type, 8);
  return header;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('C ttrpc server with the TypeScript client', () => {
  it('round-trips payloads up to several MiB', async () => {
    await startEcho();
    const client = await connect();
    expect(await echoCall(client, 'Echo', { data: Buffer.from([0, 1, 2, 255]) })).toEqual({ data: Buffer.from([0, 1, 2, 255]) });
    const big = randomBytes(3 << 20);
    const res = await echoCall(client, 'Echo', { data: big });
    expect(res.data?.equals(big)).toBe(true);
    expect(await echoCall(client, 'Echo', {})).toEqual({});
  });

  it('creates its socket 0600, replacing a stale file', async () => {
    writeFileSync(sock, 'stale');
    await startEcho();
    const st = statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('hands handlers the request metadata, the last value of a repeated key', async () => {
    await startEcho();
    const client = await connect();
    const md = { 'containerd-namespace-ttrpc': 'ns1', k: ['first', 'second'] };
    expect(await echoCall(client, 'Echo', { key: 'k' }, { metadata: md })).toEqual({ value: 'second' });
    expect(await echoCall(client, 'Echo', { key: 'containerd-namespace-ttrpc' }, { metadata: md })).toEqual({ value: 'ns1' });
    expect(await echoCall(client, 'Echo', { key: 'absent' }, { metadata: md })).toEqual({});
  });

  it('returns handler errors as google.rpc.Status with code and message', async () => {
    await startEcho();
    const client = await connect();
    const err = await rejection(echoCall(client, 'Fail', { code: Code.FAILED_PRECONDITION, message: 'process x: cannot go from created to paused' }));
    expect(err).toMatchObject({ grpcCode: Code.FAILED_PRECONDITION, message: 'process x: cannot go from created to paused' });
    expect(await rejection(echoCall(client, 'Fail', { code: Code.NOT_FOUND, message: 'task t: not found' }))).toMatchObject({ grpcCode: Code.NOT_FOUND });
  });

  it('answers unknown methods and services with UNIMPLEMENTED, in the words of berthd', async () => {
    await startEcho();
    const client = await connect();
    expect(await rejection(echoCall(client, 'Nope', {}))).toMatchObject({ grpcCode: Code.UNIMPLEMENTED, message: 'method Nope: not implemented' });
    const unknownService = client.call('x.Y', 'Z', EchoRequest, EchoResponse, {});
    expect(await rejection(unknownService)).toMatchObject({ grpcCode: Code.UNIMPLEMENTED, message: 'service x.Y: not implemented' });
  });

  it('runs calls on one connection concurrently: the slow one answers last', async () => {
    await startEcho();
    const client = await connect();
    const order: string[] = [];
    const slow = echoCall(client, 'Sleep', { sleep_ms: 400, data: Buffer.from('slow') }).then((r) => order.push(r.data!.toString()));
    const fast = echoCall(client, 'Echo', { data: Buffer.from('fast') }).then((r) => order.push(r.data!.toString()));
    await Promise.all([slow, fast]);
    expect(order).toEqual(['fast', 'slow']);
    // Many sleepers at once: each on a thread of its own, all answered on their own stream.
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => echoCall(client, 'Sleep', { sleep_ms: 200, data: Buffer.from(`s${i}`) })));
    expect(many.map((r) => r.data!.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `s${i}`));
  });

  it('skips a frame above 4 MiB, answers it RESOURCE_EXHAUSTED and keeps the connection', async () => {
    await startEcho();
    const raw = await RawConn.open(sock);
    raw.write(oversizedHeader(1), Buffer.alloc(MAX_PAYLOAD + 10, 0xab), echoFrame(3, 'Echo', { data: Buffer.from('after') }));
    // An oversized frame that is not a request is skipped without an answer.
    raw.write(oversizedHeader(5, FrameType.Response), Buffer.alloc(MAX_PAYLOAD + 10), echoFrame(7, 'Echo', { data: Buffer.from('last') }));
    const answers = [...(await raw.until(3))].sort((a, b) => a.streamId - b.streamId);
    expect(answers.map((a) => [a.streamId, a.code, a.message])).toEqual([
      [1, RESOURCE_EXHAUSTED, `message of ${MAX_PAYLOAD + 10} bytes exceeds the limit`],
      [3, Code.OK, ''],
      [7, Code.OK, ''],
    ]);
    raw.close();
    // A reply that would exceed the limit becomes RESOURCE_EXHAUSTED too.
    const client = await connect();
    const err = await rejection(echoCall(client, 'Echo', { size: MAX_PAYLOAD }));
    expect(err.grpcCode).toBe(RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/exceeds the 4194304-byte limit/);
    expect(await echoCall(client, 'Echo', { data: Buffer.from('ok') })).toEqual({ data: Buffer.from('ok') });
  });

  it('answers a malformed request INVALID_ARGUMENT on its stream and serves the next', async () => {
    await startEcho();
    const raw = await RawConn.open(sock);
    const truncated = encodeFrame(1, FrameType.Request, Buffer.from([0x0a, 0x05, 0x41]));
    const group = encodeFrame(3, FrameType.Request, Buffer.from([0x0b, 0x0c]));
    const badVarint = encodeFrame(5, FrameType.Request, Buffer.from([0x20, 0xff, 0xff]));
    // A well-formed envelope whose payload the handler cannot decode: the handler says so.
    const badPayload = encodeFrame(7, FrameType.Request, encodeRequest({ service: ECHO, method: 'Echo', payload: Buffer.from([0x0b]), timeoutNano: 0, metadata: {} }));
    raw.write(truncated, group, badVarint, badPayload, echoFrame(9, 'Echo', { data: Buffer.from('fine') }));
    // Handlers run on threads of their own, so 7 and 9 may answer in either order.
    const answers = [...(await raw.until(5))].sort((a, b) => a.streamId - b.streamId);
    expect(answers.map((a) => [a.streamId, a.code])).toEqual([
      [1, Code.INVALID_ARGUMENT],
      [3, Code.INVALID_ARGUMENT],
      [5, Code.INVALID_ARGUMENT],
      [7, Code.INVALID_ARGUMENT],
      [9, Code.OK],
    ]);
    expect(answers[0]!.message).toMatch(/^unmarshal request error: /);
    expect(answers[3]!.message).toMatch(/wire type 3/);
    expect(answers[4]!.payload.equals(encodeMessage(EchoResponse, { data: Buffer.from('fine') }))).toBe(true);
    raw.close();
  });

  it('serves even and reused stream ids, as berthd does', async () => {
    await startEcho();
    const raw = await RawConn.open(sock);
    raw.write(echoFrame(2, 'Echo', { data: Buffer.from('a') }));
    await raw.until(1);
    raw.write(echoFrame(2, 'Echo', { data: Buffer.from('b') }));
    const answers = await raw.until(2);
    expect(answers.map((a) => [a.streamId, a.code, EchoResponse.decode(a.payload).toJSON()])).toEqual([
      [2, Code.OK, { data: Buffer.from('a').toString('base64') }],
      [2, Code.OK, { data: Buffer.from('b').toString('base64') }],
    ]);
    raw.close();
  });

  it('enforces timeout_nano: DEADLINE_EXCEEDED by itself, and the late reply is dropped', async () => {
    await startEcho();
    const client = await connect();
    expect((await rejection(echoCall(client, 'Sleep', { sleep_ms: 1000 }, { timeoutMs: 100 }))).grpcCode).toBe(Code.DEADLINE_EXCEEDED);

    const raw = await RawConn.open(sock);
    raw.write(echoFrame(1, 'Sleep', { sleep_ms: 500 }, { timeoutNano: 100e6 }), echoFrame(3, 'Sleep', { sleep_ms: 50 }, { timeoutNano: 5_000e6 }));
    await raw.until(2);
    await sleep(800);
    const answers = [...raw.answers].sort((a, b) => a.streamId - b.streamId);
    expect(answers.map((a) => [a.streamId, a.code, a.message])).toEqual([
      [1, Code.DEADLINE_EXCEEDED, 'context deadline exceeded'],
      [3, Code.OK, ''],
    ]);
    raw.write(echoFrame(5, 'Echo', {}));
    expect((await raw.until(3))[2]).toMatchObject({ streamId: 5, code: Code.OK });
    raw.close();
  });

  it('drops replies to a peer that closed mid-call and goes on serving', async () => {
    const child = await startEcho();
    const gone = await connect();
    const pending = Array.from({ length: 5 }, () => rejection(echoCall(gone, 'Sleep', { sleep_ms: 200 })));
    const raw = await RawConn.open(sock);
    raw.write(echoFrame(1, 'Sleep', { sleep_ms: 200 }, { timeoutNano: 100e6 }));
    await sleep(50);
    gone.close();
    raw.close();
    for (const err of await Promise.all(pending)) expect(err.grpcCode).toBe(Code.UNAVAILABLE);
    await sleep(400);
    expect(child.exitCode).toBeNull();
    const client = await connect();
    expect(await echoCall(client, 'Echo', { data: Buffer.from('still here') })).toEqual({ data: Buffer.from('still here') });
  });

  it('on SIGTERM removes its socket, closes connections once replies are out, and exits', async () => {
    const child = await startEcho();
    const client = await connect();
    expect(await echoCall(client, 'Echo', { data: Buffer.from('x') })).toEqual({ data: Buffer.from('x') });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(sock)).toBe(false);
    expect((await client.closed).grpcCode).toBe(Code.UNAVAILABLE);
  });
});

describe('C ttrpc client against the TypeScript server', () => {
  const stateReq = (id: string) => encodeMessage(messageType('containerd.task.v2.StateRequest'), { id });
  const stateRes = (hex: string) => messageType('containerd.task.v2.StateResponse').toObject(messageType('containerd.task.v2.StateResponse').decode(Buffer.from(hex, 'hex')));

  it('calls with metadata and timeout_nano, and decodes responses', async () => {
    const seen: CallContext[] = [];
    const server = new TtrpcServer();
    servers.push(server);
    server.register(TASK, {
      State: (req: { id?: string }, ctx: CallContext) => {
        seen.push(ctx);
        if (req.id === 'missing') throw new TtrpcError(Code.NOT_FOUND, 'task missing: not found');
        return { id: req.id, pid: 42, bundle: ctx.namespace };
      },
    });
    await server.listen(sock);
    const out = await cCall(sock, TASK, 'State', 5000, { 'containerd-namespace-ttrpc': 'ns1', k: 'v' }, [stateReq('a'), stateReq('missing'), stateReq('b')]);
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(/^ok /);
    expect(stateRes(out[0]!.slice(3))).toEqual({ id: 'a', pid: 42, bundle: 'ns1' });
    expect(out[1]).toBe(`status ${Code.NOT_FOUND} task missing: not found`);
    expect(stateRes(out[2]!.slice(3))).toEqual({ id: 'b', pid: 42, bundle: 'ns1' });
    expect(seen.map((c) => c.metadata)).toEqual(Array(3).fill({ 'containerd-namespace-ttrpc': ['ns1'], k: ['v'] }));
    expect(seen.every((c) => c.deadline !== undefined)).toBe(true);
    const unknown = await cCall(sock, TASK, 'Nope', 5000, {}, [Buffer.alloc(0)]);
    expect(unknown).toEqual([`status ${Code.UNIMPLEMENTED} method Nope: not implemented`]);
  });

  it('uses odd stream ids, skips answers to other streams, and is unusable after a timeout', async () => {
    const requests: { streamId: number; envelope: RequestEnvelope }[] = [];
    const server = net.createServer((socket) => {
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          const envelope = decodeRequest(f.payload);
          requests.push({ streamId: f.streamId, envelope });
          if (requests.length === 3) continue; // never answered: the client times out
          const ok = encodeResponse({ status: { code: 0, message: '' }, payload: envelope.payload });
          socket.write(encodeFrame(f.streamId + 100, FrameType.Response, encodeResponse({ status: { code: 13, message: 'not yours' }, payload: Buffer.alloc(0) })));
          socket.write(encodeFrame(f.streamId, 3, Buffer.from('a data frame')));
          socket.write(Buffer.concat([oversizedHeader(f.streamId + 200, FrameType.Response), Buffer.alloc(MAX_PAYLOAD + 10)]));
          socket.write(encodeFrame(f.streamId, FrameType.Response, ok));
        }
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(sock, r));
    const payloads = ['one', 'two', 'three', 'four'].map((s) => Buffer.from(s));
    const out = await cCall(sock, 'svc.S', 'M', 300, { key: 'value' }, payloads);
    expect(out.slice(0, 2)).toEqual([`ok ${payloads[0]!.toString('hex')}`, `ok ${payloads[1]!.toString('hex')}`]);
    expect(out[2]).toMatch(new RegExp(`^error ${constants.errno.ETIMEDOUT} ttrpc svc.S/M: no response`));
    expect(out[3]).toMatch(new RegExp(`^error ${constants.errno.ENOTCONN} `));
    expect(requests.map((r) => r.streamId)).toEqual([1, 3, 5]);
    expect(requests[0]!.envelope).toMatchObject({ service: 'svc.S', method: 'M', timeoutNano: 300e6, metadata: { key: ['value'] } });
  });

  it('reports a missing socket and a server that closes mid-call as transport errors', async () => {
    expect(await cCall(join(dir, 'absent'), TASK, 'State', 1000, {}, [])).toEqual([expect.stringMatching(new RegExp(`^error ${constants.errno.ENOENT} connect`))]);
    const server = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    servers.push(server);
    await new Promise<void>((r) => server.listen(sock, r));
    const out = await cCall(sock, TASK, 'State', 5000, {}, [stateReq('a'), stateReq('b')]);
    expect(out[0]).toMatch(new RegExp(`^error (${constants.errno.ECONNRESET}|${constants.errno.EPIPE}) ttrpc ${TASK}/State: connection lost`));
    expect(out[1]).toMatch(new RegExp(`^error ${constants.errno.ENOTCONN} `));
  });
});

describe('C protobuf writer and SHA-256', () => {
  it('writes what protobufjs reads: 10-byte negatives, Timestamp, Any, empty messages, omitted defaults', () => {
    const hex = execFileSync(bin, ['pb'], { env: ENV }).toString().trim();
    const decoded = Sample.toObject(Sample.decode(Buffer.from(hex, 'hex')), { longs: String, bytes: Buffer, defaults: false });
    expect(decoded).toEqual({
      u: '18446744073709551615',
      neg: '-9223372036854775808',
      neg32: -2,
      yes: true,
      s: 'héllo',
      b: Buffer.from([0, 1, 2]),
      before_epoch: { seconds: '-2', nanos: 500_000_000 },
      epoch: {},
      any: { type_url: 'berth.test.Sample', value: encodeMessage(Sample, { s: 'inner' }) },
      empty: {},
    });
    // int32 -2 as ten bytes (key 0x18), as protobuf requires for negative int32.
    expect(hex).toContain('18feffffffffffffffff01');
  });

  it('hashes as sha256sum does', () => {
    const inputs = [Buffer.alloc(0), Buffer.from('abc'), ...[55, 56, 63, 64, 65, 119, 120].map((n) => randomBytes(n)), randomBytes(1 << 20)];
    for (const input of inputs) {
      const c = execFileSync(bin, ['sha256'], { input, env: ENV }).toString().trim();
      expect([input.length, c]).toEqual([input.length, createHash('sha256').update(input).digest('hex')]);
    }
    expect(execFileSync('sha256sum', { input: 'abc' }).toString().split(' ')[0]).toBe(execFileSync(bin, ['sha256'], { input: 'abc', env: ENV }).toString().trim());
  });
});
