import { decodeMessage, encodeMessage, messageType } from '../server/protos.js';
import type { RpcStatus } from './status.js';

/** ttrpc call metadata: each key may repeat, as in gRPC. */
export type Metadata = Record<string, string[]>;

/** The key under which containerd passes the namespace on ttrpc calls. */
export const NAMESPACE_KEY = 'containerd-namespace-ttrpc';

export interface RequestEnvelope {
  service: string;
  method: string;
  payload: Buffer;
  timeoutNano: number;
  metadata: Metadata;
}

export interface ResponseEnvelope {
  status: RpcStatus | undefined;
  payload: Buffer;
}

interface WireKeyValue {
  key?: string;
  value?: string;
}

interface WireRequest {
  service?: string;
  method?: string;
  payload?: Buffer;
  timeout_nano?: number;
  metadata?: WireKeyValue[];
}

interface WireResponse {
  status?: { code?: number; message?: string };
  payload?: Buffer;
}

const requestType = () => messageType('ttrpc.Request');
const responseType = () => messageType('ttrpc.Response');

function toKeyValues(metadata: Metadata): WireKeyValue[] {
  return Object.entries(metadata).flatMap(([key, values]) => values.map((value) => ({ key, value })));
}

function fromKeyValues(list: WireKeyValue[] | undefined): Metadata {
  const metadata: Metadata = {};
  for (const { key = '', value = '' } of list ?? []) (metadata[key] ??= []).push(value);
  return metadata;
}

export function encodeRequest(req: RequestEnvelope): Buffer {
  return encodeMessage(requestType(), {
    service: req.service,
    method: req.method,
    payload: req.payload,
    timeout_nano: req.timeoutNano,
    metadata: toKeyValues(req.metadata),
  });
}

export function decodeRequest(bytes: Uint8Array): RequestEnvelope {
  const wire = decodeMessage<WireRequest>(requestType(), bytes);
  return {
    service: wire.service ?? '',
    method: wire.method ?? '',
    payload: wire.payload ?? Buffer.alloc(0),
    timeoutNano: wire.timeout_nano ?? 0,
    metadata: fromKeyValues(wire.metadata),
  };
}

export function encodeResponse(res: ResponseEnvelope): Buffer {
  return encodeMessage(responseType(), { status: res.status, payload: res.payload });
}

export function decodeResponse(bytes: Uint8Array): ResponseEnvelope {
  const wire = decodeMessage<WireResponse>(responseType(), bytes);
  const status = wire.status ? { code: wire.status.code ?? 0, message: wire.status.message ?? '' } : undefined;
  return { status, payload: wire.payload ?? Buffer.alloc(0) };
}
