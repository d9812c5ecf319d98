// The page: fetch the topology, draw it, then follow the live feed.
//
// window.seer exposes the views (for a person at the console, and for the
// browser tests, which read the graph's elements and the paint times).

import "./frames.js";  // first: the graph's render loop runs slower while the page is idle
import {Connection} from "./connection.js";
import {EventLog} from "./eventlog.js";
import {GraphView} from "./graph.js";
import {LinkPlot} from "./linkplot.js";
import {NodePanel} from "./nodepanel.js";

const $ = (id) => document.getElementById(id);

function summarise(tick) {
  const counts = {};
  for (const node of Object.values(tick.nodes || {})) {
    counts[node.state] = (counts[node.state] || 0) + 1;
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const notUp = Object.entries(counts).filter(([state]) => state !== "up")
    .map(([state, n]) => `${n} ${state}`);
  return `${total} node(s)${notUp.length ? ": " + notUp.join(", ") : ", all up"} · ` +
         `serial ${tick.serial}`;
}

async function main() {
  const token = new URLSearchParams(location.search).get("token");
  const connection = new Connection(token, $("connection"));
  const hint = $("hint");
  const closePanels = () => { nodes.hide(); links.hide(); hint.hidden = false; };
  const nodes = new NodePanel($("node-panel"), connection, closePanels);
  const links = new LinkPlot($("link-panel"), connection, closePanels);
  const log = new EventLog($("log-rows"));
  const graph = new GraphView($("graph"), {
    onNode: (name) => { links.hide(); hint.hidden = true; nodes.show(name); },
    onLink: (name, kind) => { nodes.hide(); hint.hidden = true; links.show(name, kind); },
  });
  window.seer = {connection, graph, nodes, links, log, ticks: 0};

  const topology = await connection.api("topology");
  graph.cy.one("render", () => performance.mark("seer-graph-drawn"));
  graph.setTopology(topology);
  $("controller").textContent = `controller: ${topology.controller}`;

  let refetching = false;
  const onTick = async (tick) => {
    window.seer.ticks += 1;
    if (tick.topology !== graph.version && !refetching) {
      refetching = true;  // a node registered, or its interfaces changed: draw again
      try { graph.setTopology(await connection.api("topology")); } finally { refetching = false; }
    }
    graph.update(tick);
    nodes.tick(tick);
    links.tick(tick);
    $("summary").textContent = summarise(tick);
  };
  connection.listen({
    hello: (hello) => { log.hello(hello); onTick(hello.state); },
    tick: onTick,
    command: (entry) => log.command(entry),
    output: (data) => log.output(data),
    run: (data) => log.run(data),
    gap: (data) => log.gap(data),
  });
}

main().catch((error) => {
  $("controller").textContent = `cannot load the dashboard: ${error.message}`;
  throw error;
});
