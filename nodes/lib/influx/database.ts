/** InfluxDB 1.x beyond writing readings: InfluxQL statements, and points into any retention policy. */
export interface InfluxDatabase {
  /** The series of the statement's answer (epoch ms); throws on an HTTP or InfluxQL error. */
  query(statement: string, signal: AbortSignal): Promise<QuerySeries[]>;
  /** Writes line protocol (ms) into a retention policy ('' for the default); throws when not written. */
  write(retentionPolicy: string, lines: readonly string[], signal: AbortSignal): Promise<void>;
}

export interface QuerySeries {
  readonly tags?: Readonly<Record<string, string>>;
  readonly columns: readonly string[];
  readonly values: readonly (readonly unknown[])[];
}
