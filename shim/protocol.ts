/** Names shared by the shim's short-lived commands and the long-lived server. */
export const TASK_SERVICE = 'containerd.task.v2.Task';
export const SHIM_VERSION = 'berth-shim 0.1.0';
/**
 * Node flags for a long-lived shim (also for whoever launches one, such as berthd's spare): V8
 * without its optimising compiler. The shim mostly waits; this saves ~9 MiB RSS (~3 MiB private)
 * per shim, measured with 1 to 50 tasks. Lite mode turns WebAssembly off anyway; saying so
 * spares the log a warning.
 */
export const SHIM_NODE_FLAGS: readonly string[] = ['--lite-mode', '--no-expose-wasm'];
