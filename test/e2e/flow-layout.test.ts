import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { withEditor } from '../support/chromium';
import { ROOT } from '../support/fixtures';
import { serviceSkip } from '../support/services';

declare const RED: unknown;

/** A node's box on its tab as the editor drew it, and the wires leaving it. */
interface Box {
  id: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  wires: string[];
}

/** Boxes closer than this, edge to edge, read as touching at 100 % zoom. */
const GAP = 8;

/**
 * The shipped flows and every example as a user sees them: deployed and opened in the editor (real Chromium, 1400 ×
 * 900, 100 % zoom), each tab shown and drawn. No node's box overlaps or touches another's, no wire runs straight through a third
 * node, every node fits the width of the view, and each tab's info renders with what it says (a `<pi-id>` in it is
 * text, not an HTML tag).
 */
describe(
  'the shipped flows and examples as laid out in the editor',
  { skip: serviceSkip('chromium') },
  () => {
    const ed = withEditor();

    const files = [
      'flows/pi.json',
      'flows/server.json',
      ...fs
        .readdirSync(path.join(ROOT, 'examples'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => `examples/${f}`),
    ];

    for (const file of files)
      test(file, async () => {
        const flow = JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as unknown[];
        // Deployed as the launcher deploys a shipped flow (an example imported keeps its positions too), then opened.
        const res = await fetch(`${ed.nr.url}/flows`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'node-red-deployment-type': 'full' },
          body: JSON.stringify(flow),
        });
        assert.equal(res.status, 204, `${file} deployed`);
        await ed.page.reload();
        await ed.page.waitForSelector('.red-ui-palette-node[data-palette-type="teleinfo-parse"]', {
          timeout: 120_000,
        });
        const tabs = await ed.page.evaluate(async () => {
          type Node = {
            id: string;
            type: string;
            z?: string;
            x?: number;
            y?: number;
            w?: number;
            h?: number;
            wires?: string[][];
          };
          const r = RED as {
            view: { redraw(full: boolean): void };
            workspaces: { show(id: string): void };
            nodes: {
              eachWorkspace(cb: (ws: { id: string; label: string; info?: string }) => void): void;
              filterNodes(f: { z: string }): Node[];
            };
            utils: { renderMarkdown(text: string): string; getNodeLabel(n: object, d: string): string };
          };
          const workspaces: { id: string; label: string; info?: string }[] = [];
          r.nodes.eachWorkspace((ws) => workspaces.push(ws));
          const out: { label: string; info: string; boxes: unknown[] }[] = [];
          for (const ws of workspaces) {
            r.workspaces.show(ws.id);
            r.view.redraw(true);
            // Drawn on the next frames: a node's size is known once its label is laid out.
            await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
            const boxes = r.nodes
              .filterNodes({ z: ws.id })
              .filter((n) => typeof n.x === 'number')
              .map((n) => ({
                id: n.id,
                label: r.utils.getNodeLabel(n, n.type),
                x: n.x,
                y: n.y,
                w: n.w ?? 0,
                h: n.h ?? 0,
                wires: (n.wires ?? []).flat(),
              }));
            const info = document.createElement('div');
            info.innerHTML = r.utils.renderMarkdown(ws.info ?? '');
            out.push({ label: ws.label, info: info.textContent ?? '', boxes });
          }
          return out;
        });
        const raw = JSON.stringify(flow);
        for (const tab of tabs) {
          const boxes = tab.boxes as Box[];
          assert.ok(boxes.length > 0, `${tab.label}: drawn`);
          for (const b of boxes) assert.ok(b.w > 0 && b.h > 0, `${tab.label}: ${b.label} was drawn`);
          const edges = (b: Box) => ({
            l: b.x - b.w / 2,
            r: b.x + b.w / 2,
            t: b.y - b.h / 2,
            b: b.y + b.h / 2,
          });
          const problems: string[] = [];
          for (const [i, a] of boxes.entries()) {
            const A = edges(a);
            if (A.l < 0 || A.r > 1400 - 100)
              problems.push(`${a.label} runs from x ${Math.round(A.l)} to ${Math.round(A.r)}, past the view`);
            for (const b of boxes.slice(i + 1)) {
              const B = edges(b);
              if (A.l < B.r + GAP && B.l < A.r + GAP && A.t < B.b + GAP && B.t < A.b + GAP)
                problems.push(`${a.label} and ${b.label} overlap or touch`);
            }
            // A wire from a's output (its right edge) to a target's input (its left edge), as a straight segment.
            for (const to of a.wires) {
              const target = boxes.find((b) => b.id === to);
              if (!target) continue;
              const from = { x: A.r, y: a.y };
              const T = edges(target);
              const end = { x: T.l, y: target.y };
              for (const c of boxes) {
                if (c === a || c === target) continue;
                if (crosses(from, end, edges(c)))
                  problems.push(`the wire ${a.label} → ${target.label} runs through ${c.label}`);
              }
            }
          }
          assert.deepEqual(problems, [], `${file}, tab ${tab.label}`);
          // What a tab's info says about topics reaches the reader: <pi-id> and the like are not swallowed as tags.
          for (const placeholder of ['<pi-id>', '<meter>', '<pi>'])
            if (raw.includes(placeholder))
              assert.ok(
                !/teleinfo\/\//.test(tab.info),
                `${file}, tab ${tab.label}: a placeholder such as ${placeholder} vanished from its info`,
              );
        }
      });
  },
);

/** Whether the segment p → q passes through the rectangle (shrunk by 2 px, so that grazing an edge is not a cross). */
function crosses(
  p: { x: number; y: number },
  q: { x: number; y: number },
  r: { l: number; r: number; t: number; b: number },
): boolean {
  const box = { l: r.l + 2, r: r.r - 2, t: r.t + 2, b: r.b - 2 };
  // Liang–Barsky clipping: the part of the segment inside the box, if any.
  let t0 = 0;
  let t1 = 1;
  const dx = q.x - p.x;
  const dy = q.y - p.y;
  for (const [pk, qk] of [
    [-dx, p.x - box.l],
    [dx, box.r - p.x],
    [-dy, p.y - box.t],
    [dy, box.b - p.y],
  ]) {
    if (pk === 0) {
      if (qk < 0) return false;
      continue;
    }
    const t = qk / pk;
    if (pk < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    if (t0 > t1) return false;
  }
  return true;
}
