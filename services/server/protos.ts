import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import protobuf from 'protobufjs';
import type { ServiceDefinition, MethodDefinition } from '@grpc/grpc-js';
import { packagePath } from '../paths.js';

/**
 * One protobufjs Root holds every schema in proto/. We build grpc-js service definitions from it by
 * hand (instead of @grpc/proto-loader) so the daemon parses the .proto files once and uses the same
 * types to pack events into google.protobuf.Any and to speak ttrpc. `npm ci` prebuilds the parsed
 * schema into dist/proto.json (scripts/build-protos.mjs); the .proto files are the fallback.
 */
function listProtos(dir: string, base: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listProtos(path, base);
    return entry.name.endsWith('.proto') ? [relative(base, path)] : [];
  });
}

let cached: protobuf.Root | undefined;

export function protoRoot(): protobuf.Root {
  if (cached) return cached;
  const prebuilt = packagePath('dist', 'proto.json');
  if (existsSync(prebuilt)) {
    cached = protobuf.Root.fromJSON(JSON.parse(readFileSync(prebuilt, 'utf8')) as protobuf.INamespace);
    cached.resolveAll();
    return cached;
  }
  const dir = packagePath('proto');
  const root = new protobuf.Root();
  // Well-known google.protobuf types come bundled with protobufjs; everything else is ours.
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(dir, target));
  root.loadSync(listProtos(dir, dir), { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}

/** What our handlers see: plain objects, 64-bit ints as numbers, enums by name, bytes as Buffer. */
const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: false,
  arrays: true,
  objects: true,
};

export type Message = Record<string, unknown>;

export function messageType(name: string): protobuf.Type {
  return protoRoot().lookupType(name);
}

export function encodeMessage(type: protobuf.Type, value: object): Buffer {
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

export function decodeMessage<T = Message>(type: protobuf.Type, bytes: Uint8Array): T {
  return type.toObject(type.decode(bytes), TO_OBJECT) as T;
}

/** Packs a message into google.protobuf.Any with containerd's bare type URL convention. */
export function packAny(typeName: string, value: object): { type_url: string; value: Buffer } {
  return { type_url: typeName, value: encodeMessage(messageType(typeName), value) };
}

export function serviceDefinition(fullName: string): ServiceDefinition {
  const service = protoRoot().lookupService(fullName);
  const definition: Record<string, MethodDefinition<Message, Message>> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const req = method.resolvedRequestType;
    const res = method.resolvedResponseType;
    if (!req || !res) throw new Error(`unresolved types for ${fullName}/${method.name}`);
    definition[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: (value: Message) => encodeMessage(req, value),
      requestDeserialize: (bytes: Buffer) => decodeMessage(req, bytes),
      responseSerialize: (value: Message) => encodeMessage(res, value),
      responseDeserialize: (bytes: Buffer) => decodeMessage(res, bytes),
      originalName: method.name,
    };
  }
  return definition;
}
