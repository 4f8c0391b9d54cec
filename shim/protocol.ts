/** Names shared by the shim's short-lived commands and the long-lived server. */
export const TASK_SERVICE = 'containerd.task.v2.Task';
export const SHIM_VERSION = 'berth-shim 0.1.0';
