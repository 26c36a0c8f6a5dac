/**
 * Schema versions for the objects' SQLite storage: each object lists its migrations in order, and
 * `migrate` applies those above the stored version, each in a transaction with the version bump,
 * so an object written by any earlier release is upgraded in place on its next wake-up. Migration 1
 * of each object is the schema as it was before versions existed (`CREATE ... IF NOT EXISTS`), so an
 * object written then (version 0: no `schema_version` table) keeps everything it holds.
 */

/** One step of an object's schema. */
export interface Migration {
  /** 1, 2, 3, … in order, never reused. */
  version: number;
  /** What the step does, for the log and the reader. */
  name: string;
  up(sql: SqlStorage): void;
}

/** The table holding the version (one row). */
export const SCHEMA_VERSION_TABLE = "schema_version";

/** The stored version: 0 for storage written before versions existed (or empty storage). */
export function schemaVersion(sql: SqlStorage): number {
  const exists = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", SCHEMA_VERSION_TABLE).toArray().length > 0;
  if (!exists) return 0;
  return sql.exec<{ version: number }>(`SELECT version FROM ${SCHEMA_VERSION_TABLE}`).toArray()[0]?.version ?? 0;
}

/** Applies the migrations above the stored version, in order; returns the version reached. */
export function migrate(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  const sql = storage.sql;
  let version = schemaVersion(sql);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version <= migrations[i - 1].version) throw new Error(`migrations out of order at ${migrations[i].name}`);
  }
  for (const m of migrations) {
    if (m.version <= version) continue;
    storage.transactionSync(() => {
      m.up(sql);
      sql.exec(`CREATE TABLE IF NOT EXISTS ${SCHEMA_VERSION_TABLE} (version INTEGER NOT NULL)`);
      sql.exec(`DELETE FROM ${SCHEMA_VERSION_TABLE}`);
      sql.exec(`INSERT INTO ${SCHEMA_VERSION_TABLE} (version) VALUES (?)`, m.version);
    });
    version = m.version;
  }
  return version;
}
