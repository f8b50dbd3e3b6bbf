import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './fixtures';

/** The provisioned Grafana dashboard (docker/grafana/dashboards/teleinfo.json), as its queries need it. */

interface Target {
  refId: string;
  datasource: { uid: string };
  rawQuery: boolean;
  query: string;
}
export interface Panel {
  id: number;
  title: string;
  datasource: { uid: string };
  targets: Target[];
}
export interface Dashboard {
  uid: string;
  timezone: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string; datasource?: { uid: string } }[] };
}

export const dashboard = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'docker', 'grafana', 'dashboards', 'teleinfo.json'), 'utf8'),
) as Dashboard;

/**
 * The macros of a query, expanded as Grafana's InfluxDB datasource does for a time range, an interval and the
 * meters chosen.
 */
export function expand(
  query: string,
  range: { from: number; to: number; interval: string },
  meters: readonly string[],
): string {
  const vars = Object.fromEntries(
    dashboard.templating.list.filter((v) => v.type === 'textbox').map((v) => [v.name, v.query]),
  );
  const escaped = meters.map((m) => m.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&'));
  return query
    .replace(/\$timeFilter/g, `time >= ${range.from}ms and time <= ${range.to}ms`)
    .replace(/\$__interval/g, range.interval)
    .replace(/\$meter\b/g, `(${escaped.join('|')})`)
    .replace(/\$(\w+)/g, (whole, name: string) => vars[name] ?? whole);
}
