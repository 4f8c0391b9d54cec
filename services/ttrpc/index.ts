export { TtrpcClient, type CallOptions } from './client.js';
export { TtrpcServer, type CallContext, type MethodHandler, type ServiceHandlers } from './server.js';
export { Code, TtrpcError, statusOf, type CodeValue, type RpcStatus } from './status.js';
export { NAMESPACE_KEY, type Metadata } from './envelope.js';
export { encodeFrame, FrameDecoder, FrameType, HEADER_SIZE, MAX_PAYLOAD, type Frame } from './frame.js';
