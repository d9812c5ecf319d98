// The graph view: every node, LAN and point-to-point link, with live rates and states.
//
// Elements (cytoscape): a node is "node:NAME" (class host, or router); a LAN
// is a node of its own, "link:NAME" (class link lan), with an edge to each
// member ("member:LAN:NODE"); a point-to-point link is one edge
// "link:NAME" (class link p2p). So every link of the topology is exactly
// one element of class "link", named after it.
//
// Each tick only changes data that changed, in one batch: a 100-node star
// redraws once a second without keeping a core busy.

import {formatPerSecond, formatRate} from "./format.js";

const STATE_CLASSES = ["up", "lagging", "unreachable", "down", "never"];
const IDLE_BPS = 1000;
const MAX_FIT_ZOOM = 1.6;

/** Line width for a rate: 1.5 px idle, +1.5 px per decade above 1 kbit/s, at most 12. */
export function widthFor(bps) {
  if (!bps || bps < IDLE_BPS) return 1.5;
  return Math.min(12, 1.5 + 1.5 * Math.log10(bps / IDLE_BPS));
}

/** Colour for a link: grey idle, blue busy, amber / red as a shaped link fills, red on drops. */
export function colourFor(bps, utilization, drops) {
  if (drops > 0) return "#e03131";
  if (!bps || bps < IDLE_BPS) return "#ced4da";
  if (utilization === undefined || utilization === null) return "#1c7ed6";
  if (utilization >= 0.9) return "#e03131";
  if (utilization >= 0.6) return "#f59f00";
  return "#37b24d";
}

function stateClass(state) {
  return state === "never registered" ? "never" : state;
}

const STYLE = [
  {selector: "node.host", style: {
    "shape": "ellipse", "width": 30, "height": 30, "background-color": "#adb5bd",
    "border-width": 2, "border-color": "#343a40", "label": "data(name)",
    "text-valign": "bottom", "text-margin-y": 4, "font-size": 12, "min-zoomed-font-size": 7}},
  {selector: "node.router", style: {"shape": "round-rectangle", "width": 38}},
  {selector: "node.up", style: {"background-color": "#2f9e44"}},
  {selector: "node.lagging", style: {"background-color": "#f59f00"}},
  {selector: "node.unreachable", style: {"background-color": "#e8590c"}},
  {selector: "node.down", style: {"background-color": "#c92a2a"}},
  {selector: "node.never", style: {"background-color": "#dee2e6", "border-style": "dashed"}},
  {selector: "node.lan", style: {
    "shape": "diamond", "width": 22, "height": 22, "background-color": "data(colour)",
    "border-width": 1, "border-color": "#495057", "label": "data(label)",
    "text-wrap": "wrap", "text-valign": "center", "text-halign": "right",
    "text-margin-x": 6, "font-size": 11, "color": "#343a40", "min-zoomed-font-size": 7,
    "text-background-color": "#ffffff", "text-background-opacity": 0.85,
    "text-background-padding": 2}},
  {selector: "edge", style: {
    "width": "data(width)", "line-color": "data(colour)", "curve-style": "straight"}},
  {selector: "edge.p2p", style: {
    "label": "data(label)", "text-wrap": "wrap", "font-size": 11, "color": "#343a40",
    "min-zoomed-font-size": 7, "text-background-color": "#ffffff",
    "text-background-opacity": 0.85, "text-background-padding": 2,
    "text-rotation": "autorotate"}},
  {selector: "edge.dropping", style: {"line-style": "dashed"}},
  {selector: ":selected", style: {"overlay-color": "#1c7ed6", "overlay-opacity": 0.25,
                                  "overlay-padding": 6}},
];

export class GraphView {
  constructor(container, {onNode, onLink}) {
    this.cy = cytoscape({container, style: STYLE, elements: [], minZoom: 0.1, maxZoom: 4,
                         boxSelectionEnabled: false, autoungrabify: false,
                         textureOnViewport: true, hideEdgesOnViewport: true});
    this.version = null;
    this.members = {};  // link name -> [node names]
    this.cy.on("tap", "node.host", (event) => onNode(event.target.data("name")));
    this.cy.on("tap", ".link", (event) => onLink(event.target.data("name"),
                                                 event.target.data("kind")));
  }

  /** Draw a topology ({nodes, links, version}) afresh, laid out for its size. */
  setTopology(topology) {
    this.version = topology.version;
    this.members = {};
    const elements = [];
    for (const node of topology.nodes) {
      elements.push({group: "nodes", data: {id: `node:${node.name}`, name: node.name},
                     classes: `host never${node.router ? " router" : ""}`});
    }
    for (const link of topology.links) {
      const id = `link:${link.name}`;
      const data = {id, name: link.name, kind: link.kind, capacity: link.bandwidth_bps,
                    label: link.name, rate: formatRate(0), bps: 0, width: 1.5,
                    colour: "#ced4da"};
      this.members[link.name] = link.members;
      if (link.kind === "link" && link.members.length === 2) {
        elements.push({group: "edges", classes: "link p2p",
                       data: {...data, source: `node:${link.members[0]}`,
                              target: `node:${link.members[1]}`}});
        continue;
      }
      elements.push({group: "nodes", classes: "link lan", data});
      for (const member of link.members) {
        elements.push({group: "edges", classes: "member",
                       data: {id: `member:${link.name}:${member}`, source: id,
                              target: `node:${member}`, width: 1.5, colour: "#ced4da"}});
      }
    }
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add(elements);
    });
    this.cy.layout(this.layoutFor()).run();
    this.cy.fit(undefined, 40);
    if (this.cy.zoom() > MAX_FIT_ZOOM) {  // a few nodes: readable size, not giant
      this.cy.zoom(MAX_FIT_ZOOM);
      this.cy.center();
    }
  }

  /** A tree from the busiest node for a small experiment; rings by degree for a big one. */
  layoutFor() {
    const count = this.cy.nodes().length;
    if (count > 40) {
      return {name: "concentric", animate: false, concentric: (node) => node.degree(),
              levelWidth: () => 1, minNodeSpacing: 8, avoidOverlap: true};
    }
    const roots = this.cy.nodes().sort((a, b) => b.degree() - a.degree()).slice(0, 1);
    return {name: "breadthfirst", animate: false, directed: false, roots,
            spacingFactor: 1.15, avoidOverlap: true};
  }

  /** One tick: node states and link rates. */
  update(tick) {
    const cy = this.cy;
    cy.batch(() => {
      for (const [name, node] of Object.entries(tick.nodes || {})) {
        const element = cy.getElementById(`node:${name}`);
        if (element.empty()) continue;
        const wanted = stateClass(node.state);
        if (!element.hasClass(wanted)) {
          element.removeClass(STATE_CLASSES.join(" ")).addClass(wanted);
        }
        if (element.data("state") !== node.state) element.data("state", node.state);
      }
      for (const [name, link] of Object.entries(tick.links || {})) {
        this.updateLink(name, link);
      }
    });
  }

  updateLink(name, link) {
    const element = this.cy.getElementById(`link:${name}`);
    if (element.empty()) return;
    const bps = link.bps || 0;
    const drops = link.drops_ps || 0;
    const rate = formatRate(bps);
    const label = [name, rate, drops > 0 ? `drops ${formatPerSecond(drops)}` : null]
      .filter(Boolean).join("\n");
    const colour = colourFor(bps, link.utilization, drops);
    set(element, {bps, rate, drops, label, colour, width: widthFor(bps),
                  utilization: link.utilization ?? null});
    element.toggleClass("dropping", drops > 0);
    if (element.hasClass("lan")) {
      for (const member of this.members[name] || []) {
        const edge = this.cy.getElementById(`member:${name}:${member}`);
        const [tx, rx] = (link.ends || {})[member] || [0, 0];
        const memberBps = (tx || 0) + (rx || 0);
        set(edge, {width: widthFor(memberBps),
                   colour: colourFor(memberBps, link.utilization, drops)});
      }
    }
  }
}

/** Change only the data that changed (each change is a redraw's worth of work). */
function set(element, values) {
  for (const [key, value] of Object.entries(values)) {
    if (element.data(key) !== value) element.data(key, value);
  }
}
