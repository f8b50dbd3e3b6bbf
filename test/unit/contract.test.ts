import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { editorDefinitions } from '../support/editor-definitions';
import { ROOT } from '../support/fixtures';

/** docs/contract.md's table of node types: type → its settings (and credentials). */
function documented(): Map<string, Set<string>> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'contract.md'), 'utf8');
  const table = doc.slice(
    doc.indexOf('## Node types and their settings'),
    doc.indexOf('## The normalized reading'),
  );
  const types = new Map<string, Set<string>>();
  for (const line of table.split('\n')) {
    const m = /^\| `([\w-]+)` \| \w+ \| (.*) \|$/.exec(line);
    if (m) types.set(m[1], new Set([...m[2].matchAll(/`(\w+)`/g)].map((x) => x[1])));
  }
  return types;
}

const OURS = /^(teleinfo-|ecodevices-|influx-teleinfo-out$|influxdb-teleinfo-server$)/;
/** What Node-RED itself keeps on every node of a flow. */
const NODE_RED_KEYS = new Set([
  'id',
  'type',
  'z',
  'g',
  'x',
  'y',
  'w',
  'h',
  'wires',
  'd',
  'name',
  'info',
  'l',
]);

test('docs/contract.md lists exactly the node types and settings the editor registers', () => {
  const registered = editorDefinitions();
  const doc = documented();
  assert.deepEqual([...doc.keys()].sort(), [...registered.keys()].sort());
  for (const [type, def] of registered)
    assert.deepEqual(
      [...doc.get(type)!].sort(),
      [...Object.keys(def.defaults), ...Object.keys(def.credentials)].filter((k) => k !== 'name').sort(),
      type,
    );
  const packaged = Object.keys(
    (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
        'node-red': { nodes: object };
      }
    )['node-red'].nodes,
  );
  for (const file of packaged)
    assert.ok(registered.has(file), `${file}: a node file of package.json registers its type`);
});

test('the shipped flows and examples use only the contract: its node types, their settings, its topics', () => {
  const doc = documented();
  const contract = fs.readFileSync(path.join(ROOT, 'docs', 'contract.md'), 'utf8');
  const files = [
    'flows/pi.json',
    'flows/server.json',
    ...fs.readdirSync(path.join(ROOT, 'examples')).map((f) => `examples/${f}`),
  ];
  const topics = new Set<string>();
  for (const file of files) {
    const flow = JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as Record<string, unknown>[];
    for (const node of flow) {
      const type = String(node.type);
      if (OURS.test(type)) {
        assert.ok(doc.has(type), `${file}: ${type} is not in the contract`);
        assert.notEqual(type, 'teleinfo-buffer', `${file}: a deprecated type`);
        const unknown = Object.keys(node).filter((k) => !NODE_RED_KEYS.has(k) && !doc.get(type)!.has(k));
        assert.deepEqual(
          unknown,
          [],
          `${file}: ${type} ${String(node.id)} has settings the contract does not list`,
        );
      }
      if ((type === 'mqtt in' || type === 'mqtt out') && typeof node.topic === 'string' && node.topic !== '')
        topics.add(node.topic);
    }
  }
  // A topic a flow names literally is one of the contract's (wildcards and ${VARIABLES} standing for its ids).
  const patterns = [...contract.matchAll(/^\| `([^`]+)` \|/gm)]
    .map((m) => m[1])
    .filter((t) => t.includes('/'));
  const matches = (topic: string) =>
    topic.startsWith('${') ||
    patterns.some((p) => {
      const parts = p.split('/');
      const mine = topic.replace(/^\$share\/[^/]+\//, '').split('/');
      return (
        (mine.length === parts.length || (mine.at(-1) === '#' && mine.length <= parts.length)) &&
        mine.every((x, i) => x === '+' || x === '#' || x === parts[i] || /^<.*>$/.test(parts[i] ?? ''))
      );
    });
  for (const topic of topics) assert.ok(matches(topic), `topic ${topic} is not one of the contract's`);
  assert.ok(topics.size >= 4, 'the flows name topics');
});
