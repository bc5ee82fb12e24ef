// graph_view.js: owns the picture of a graph run: its definition (GET /graph/<id>: nodes,
// edges, conditional edges) laid out top to bottom as SVG, one row per distance from the
// start node, and, folded from the run's events as GraphRunView does on the server, the
// current node (highlighted) and how many passes each node made.

import { svg } from "./dom.js";

const END = "END";
const NODE_WIDTH = 130;
const NODE_HEIGHT = 44;
const COLUMN_GAP = 40;
const ROW_GAP = 34;
const LOOP_ROOM = 70; // to the right of the nodes, where edges back up the graph go
const MARGIN = 24;

// [{from, to, label}] of the definition: plain edges and both branches of conditional ones.
function edgesOf(definition) {
  const edges = Object.entries(definition.edges ?? {}).map(([from, to]) => ({ from, to, label: "" }));
  for (const [from, branch] of Object.entries(definition.conditional_edges ?? {})) {
    edges.push({ from, to: branch.true, label: "true" }, { from, to: branch.false, label: "false" });
  }
  return edges;
}

// Layers (rows) by breadth-first distance from the start node (the first no edge points to);
// a node the walk does not reach goes in the first layer.
function layout(definition, edges) {
  const names = Object.keys(definition.nodes ?? {});
  const targets = new Set(edges.map((edge) => edge.to));
  const start = names.find((name) => !targets.has(name)) ?? names[0];
  const ends = new Set(names.filter((name) => !edges.some((edge) => edge.from === name)));
  const layerOf = new Map([[start, 0]]);
  const queue = [start];
  while (queue.length > 0) {
    const name = queue.shift();
    const next = edges.filter((edge) => edge.from === name).map((edge) => edge.to);
    if (ends.has(name)) next.push(END);
    for (const to of next) {
      if (!layerOf.has(to)) {
        layerOf.set(to, layerOf.get(name) + 1);
        if (to !== END) queue.push(to);
      }
    }
  }
  for (const name of names) if (!layerOf.has(name)) layerOf.set(name, 0);
  const perLayer = new Map();
  const position = new Map();
  for (const [name, layer] of layerOf) {
    const slot = perLayer.get(layer) ?? 0;
    perLayer.set(layer, slot + 1);
    position.set(name, {
      x: MARGIN + slot * (NODE_WIDTH + COLUMN_GAP),
      y: MARGIN + layer * (NODE_HEIGHT + ROW_GAP),
      layer,
    });
  }
  const widest = Math.max(...perLayer.values());
  const width = MARGIN * 2 + widest * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP + LOOP_ROOM;
  const height = MARGIN * 2 + perLayer.size * (NODE_HEIGHT + ROW_GAP) - ROW_GAP;
  return { position, width, height, ends, right: width - MARGIN - LOOP_ROOM };
}

function edgePath(from, to, right) {
  if (to.layer > from.layer) {
    const x1 = from.x + NODE_WIDTH / 2;
    const y1 = from.y + NODE_HEIGHT;
    const x2 = to.x + NODE_WIDTH / 2;
    const y2 = to.y;
    const bend = (y2 - y1) / 2;
    return { d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`, labelX: (x1 + x2) / 2 + 18, labelY: (y1 + y2) / 2 + 4 };
  }
  if (from === to) { // a node back to itself: a loop on its right side
    const x = from.x + NODE_WIDTH;
    const out = x + LOOP_ROOM * 0.7;
    return { d: `M${x},${from.y + 12} C${out},${from.y - 10} ${out},${from.y + NODE_HEIGHT + 10} ${x},${from.y + NODE_HEIGHT - 12}`, labelX: out + 4, labelY: from.y + NODE_HEIGHT / 2 + 4 };
  }
  // back to an earlier layer (a loop) or along the same one: around the right of the nodes
  const x1 = from.x + NODE_WIDTH;
  const y1 = from.y + NODE_HEIGHT / 2;
  const x2 = to.x + NODE_WIDTH;
  const y2 = to.y + NODE_HEIGHT / 2;
  const out = right + LOOP_ROOM * 0.8;
  return { d: `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2},${y2}`, labelX: right + LOOP_ROOM * 0.45, labelY: (y1 + y2) / 2 };
}

export class GraphView {
  constructor(definition) {
    const edges = edgesOf(definition);
    const { position, width, height, ends, right } = layout(definition, edges);
    this.passes = new Map();
    this.current = null;
    this.nodes = new Map(); // name -> {group, count}
    const drawn = [...edges, ...[...ends].map((from) => ({ from, to: END, label: "" }))];
    this.element = svg("svg", {
      id: "graph", class: "graph", viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `graph ${definition.name ?? ""}: ${position.size} nodes`,
    },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))),
    drawn.filter((edge) => position.has(edge.from) && position.has(edge.to)).map((edge) => {
      const path = edgePath(position.get(edge.from), position.get(edge.to), right);
      return svg("g", { class: "graph-edge", dataset: { from: edge.from, to: edge.to } },
        svg("path", { d: path.d, "marker-end": "url(#arrow)" }),
        edge.label ? svg("text", { x: path.labelX, y: path.labelY, "text-anchor": "middle", class: "edge-label" }, edge.label) : null);
    }),
    [...position].map(([name, at]) => {
      const count = svg("text", { x: at.x + NODE_WIDTH / 2, y: at.y + 36, "text-anchor": "middle", class: "node-passes" });
      const title = svg("title", {}, name);
      const group = svg("g", { class: `graph-node${name === END ? " graph-end" : ""}`, dataset: { node: name } },
        title,
        svg("rect", { x: at.x, y: at.y, width: NODE_WIDTH, height: NODE_HEIGHT, rx: 8 }),
        svg("text", { x: at.x + NODE_WIDTH / 2, y: at.y + 19, "text-anchor": "middle", class: "node-name" },
          name.length > 16 ? `${name.slice(0, 15)}…` : name),
        count);
      this.nodes.set(name, { group, count, title });
      return group;
    }));
    this.#render();
  }

  // One run event, as GraphRunView.apply reads it.
  apply(event) {
    const kind = event.event;
    if (kind === "StepStarted" && event.node !== undefined) {
      this.passes.set(event.node, (this.passes.get(event.node) ?? 0) + 1);
      this.#setCurrent(event.node);
    } else if (kind === "GraphTransition") {
      this.#setCurrent(event.to);
    } else if (kind === "WorkflowCompleted" && event.status !== "cancelled") {
      this.#setCurrent(END);
    } else {
      return;
    }
    this.#render();
  }

  #render() {
    for (const [name, { group, count, title }] of this.nodes) {
      const passes = this.passes.get(name) ?? 0;
      group.dataset.passes = String(passes);
      count.textContent = name === END ? "" : `${passes} pass${passes === 1 ? "" : "es"}`;
      title.textContent = `${name}: ${passes} pass${passes === 1 ? "" : "es"}${name === this.current ? ", current" : ""}`;
    }
  }

  #setCurrent(name) {
    this.nodes.get(this.current)?.group.classList.remove("current");
    this.current = name;
    const node = this.nodes.get(name);
    if (node !== undefined) node.group.classList.add("current");
  }
}
