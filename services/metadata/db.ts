import Database from 'better-sqlite3';
import { MIGRATIONS } from './schema.js';

export type Db = Database.Database;

/** A published event, queued inside a transaction and delivered only after COMMIT. */
export interface PendingEvent {
  namespace: string;
  topic: string;
  typeName: string;
  event: object;
}

export interface Tx {
  readonly db: Db;
  emit(event: PendingEvent): void;
}

export type EventSink = (event: PendingEvent) => void;

export class Metadata {
  readonly db: Db;
  private sink: EventSink = () => undefined;

  constructor(path: string) {
    this.db = new Database(path);
    try {
      // WAL keeps readers off the writer's back; NORMAL sync is crash-safe for a killed process,
      // which is the failure this store promises to survive.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
      cachePreparedStatements(this.db);
    } catch (err) {
      // A file that is not a database, or a refused or failed migration, must not stay open.
      this.db.close();
      throw err;
    }
  }

  onEvent(sink: EventSink): void {
    this.sink = sink;
  }

  /** Runs fn in one transaction; its events are published after COMMIT, none on rollback. */
  transaction<T>(fn: (tx: Tx) => T): T {
    const events: PendingEvent[] = [];
    const tx: Tx = { db: this.db, emit: (event) => events.push(event) };
    const result = this.db.transaction(() => fn(tx)).immediate();
    for (const event of events) this.sink(event);
    return result;
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Each SQL text is prepared once: preparing cost more than running the query on the hot paths
 * (a `ctr run` makes ~20 calls with a few queries each). The services' SQL texts are constants,
 * so the cache stays small, and none changes a statement's mode (pluck, raw, expand), which
 * would carry over to the next user of the same text. Results are read at once (get, all, run),
 * never iterated, so a statement is never busy when it is handed out again.
 */
function cachePreparedStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  const cached = (sql: string): Database.Statement => {
    let stmt = cache.get(sql);
    if (stmt === undefined) {
      stmt = prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
  db.prepare = cached as Db['prepare'];
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`metadata.db has schema version ${current}, newer than this berthd (${MIGRATIONS.length}); upgrade berthd`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? '');
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

export function parseLabels(json: string | null | undefined): Record<string, string> {
  return json ? (JSON.parse(json) as Record<string, string>) : {};
}

/**
 * Runs an INSERT and reports whether the row was new; only a key collision counts as "exists"
 * (INSERT OR IGNORE would also swallow NOT NULL and CHECK violations).
 */
export function insertNew(stmt: Database.Statement, ...params: unknown[]): boolean {
  try {
    stmt.run(...params);
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') return false;
    throw err;
  }
}
