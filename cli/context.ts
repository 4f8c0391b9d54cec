import { Api } from './client.js';

export interface GlobalOptions {
  address: string;
  namespace: string;
  json: boolean;
}

/**
 * What every command receives: the global options and a client made on first use, so commands
 * that fail on their arguments never load grpc-js or the protos.
 */
export class Context {
  #api: Api | undefined;

  constructor(readonly options: GlobalOptions) {}

  get json(): boolean {
    return this.options.json;
  }

  get namespace(): string {
    return this.options.namespace;
  }

  get api(): Api {
    this.#api ??= new Api(this.options.address, this.options.namespace);
    return this.#api;
  }

  close(): void {
    this.#api?.close();
  }
}
