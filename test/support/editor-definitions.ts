import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { ROOT } from './fixtures';

/** A node type as its editor definition registers it: its settings and credentials. */
export interface EditorDefinition {
  readonly category: string;
  readonly defaults: Record<string, unknown>;
  readonly credentials: Record<string, unknown>;
}

/**
 * Every node type the package's editor files register, read by running their scripts (and the editor toolkit) in a
 * sandbox that stands for the editor: RED.nodes.registerType records, jQuery and the DOM do nothing.
 */
export function editorDefinitions(): Map<string, EditorDefinition> {
  const found = new Map<string, EditorDefinition>();
  const chain: unknown = new Proxy(() => chain, { get: () => chain, apply: () => chain });
  // jQuery: $.extend as it is (the toolkit merges definitions with it), anything else a no-op chain.
  const $ = new Proxy(() => chain, {
    get: (_t, p) =>
      p === 'extend' ? (...objects: object[]): object => Object.assign({}, ...objects) as object : chain,
    apply: () => chain,
  });
  const window: Record<string, unknown> = {};
  const context = vm.createContext({
    window,
    document: { body: {}, getElementById: () => null },
    $,
    RED: {
      nodes: {
        registerType(type: string, def: { category?: string; defaults?: object; credentials?: object }) {
          found.set(type, {
            category: def.category ?? '',
            defaults: { ...def.defaults },
            credentials: { ...def.credentials },
          });
        },
      },
      validators: { number: () => () => true, regex: () => () => true },
    },
  });
  vm.runInContext(fs.readFileSync(path.join(ROOT, 'resources', 'editor.js'), 'utf8'), context);
  context.teleinfoEditor = window.teleinfoEditor;
  const nodesDir = path.join(ROOT, 'nodes');
  for (const dir of fs.readdirSync(nodesDir)) {
    const file = path.join(nodesDir, dir, `${dir}.html`);
    if (!fs.existsSync(file)) continue;
    const html = fs.readFileSync(file, 'utf8');
    for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g))
      vm.runInContext(m[1], context, { filename: file });
  }
  return found;
}
