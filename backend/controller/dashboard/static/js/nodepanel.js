// The node panel: one node's state, agent groups (variables, run state,
// counters), recent outcomes and the tail of its agent logs.
//
// The panel is fetched when a node is clicked and again every few seconds
// while it is open; the logs live on the node, so they are asked for once
// on opening and again only when "Refresh" is pressed.

import {el, formatClock, formatRate} from "./format.js";

const REFRESH_MS = 3000;

function table(rows) {
  return el("table", {class: "kv"},
            rows.map(([key, value]) => el("tr", {}, el("td", {}, key), el("td", {}, value))));
}

function valueText(value) {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

function groupBox(group) {
  const run = group.run || "not started";
  const box = el("div", {class: "group"},
    el("div", {class: "title"}, `${group.agent} / ${group.group}`,
       el("span", {class: `run ${run}`}, run)));
  if (group.why) box.append(el("div", {class: "muted"}, group.why));
  const vars = Object.entries(group.vars || {});
  if (vars.length) box.append(table(vars.map(([k, v]) => [k, valueText(v)])));
  const counters = Object.entries(group.counters || {});
  if (counters.length) {
    box.append(el("h3", {}, "counters"),
               table(counters.map(([k, v]) => {
                 const rate = (group.rates || {})[k];
                 return [k, rate ? `${v} (${rate}/s)` : String(v)];
               })));
  }
  if (group.processes !== undefined) {
    box.append(el("div", {class: "muted"},
      `${group.processes} process(es), ${group.cpu_percent ?? 0}% of a core, ` +
      `${Math.round((group.resident_bytes || 0) / 1048576)} MiB`));
  }
  return box;
}

export class NodePanel {
  constructor(container, connection, onClose) {
    this.container = container;
    this.connection = connection;
    this.onClose = onClose;
    this.name = null;
    this.timer = null;
    this.logs = el("div", {id: "node-logs"});
  }

  async show(name) {
    this.hide();
    this.name = name;
    this.container.hidden = false;
    this.container.replaceChildren(el("h2", {}, name), el("p", {class: "muted"}, "loading…"));
    this.logs = el("div", {id: "node-logs"}, el("p", {class: "muted"}, "asking the node…"));
    await this.refresh();
    this.loadLogs();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
    this.name = null;
    this.container.hidden = true;
  }

  async refresh() {
    const name = this.name;
    if (!name) return;
    let node;
    try {
      node = await this.connection.api("node", {name});
    } catch (error) {
      this.container.replaceChildren(el("h2", {}, name), el("p", {}, String(error.message)));
      return;
    }
    if (name !== this.name) return;  // another node was clicked meanwhile
    this.render(node);
  }

  render(node) {
    const state = node.state || "unknown";
    const badge = state === "never registered" ? "never" : state;
    const addresses = (node.addresses || []).join(" ") || "-";
    const groups = node.groups || [];
    this.container.replaceChildren(
      el("button", {class: "close", title: "close", onclick: () => this.onClose()}, "×"),
      el("h2", {}, node.name, " ", el("span", {class: `badge ${badge}`, id: "node-state"},
                                      state)),
      table([["lag", node.lag === null || node.lag === undefined ? "-" :
                     `${node.lag} serial(s)`],
             ["addresses", addresses],
             ["sent / received", `${formatRate(node.tx_bps)} / ${formatRate(node.rx_bps)}`],
             ["host CPU", node.cpu_percent === undefined ? "-" : `${node.cpu_percent}%`],
             ["last heard", formatClock(node.last_seen)],
             ["agents", (node.agents || []).join(", ") || "-"]]),
      el("h3", {}, `agent groups (${groups.length})`),
      groups.length ? el("div", {id: "node-groups"}, groups.map(groupBox))
                    : el("p", {class: "muted"}, "none"),
      el("h3", {}, "recent outcomes"),
      this.outcomes(node.outcomes || []),
      el("h3", {}, "agent logs ",
         el("button", {class: "small", onclick: () => this.loadLogs()}, "Refresh")),
      this.logs);
  }

  outcomes(outcomes) {
    if (!outcomes.length) return el("p", {class: "muted"}, "none");
    return el("div", {}, outcomes.map((o) => el("div", {},
      el("span", {class: "muted"}, `${formatClock(o.time)} `),
      `${o.command || o.type} ${o.agent || ""}/${o.group || ""} `,
      el("span", {class: `outcome ${o.status}`}, o.status),
      o.error ? el("div", {class: "muted"}, o.error) : null)));
  }

  async loadLogs() {
    const name = this.name;
    if (!name) return;
    this.logs.replaceChildren(el("p", {class: "muted"}, "asking the node…"));
    let answer;
    try {
      answer = await this.connection.api("logs", {node: name});
    } catch (error) {
      answer = {error: error.message};
    }
    if (name !== this.name) return;
    if (answer.error) {
      this.logs.replaceChildren(el("p", {class: "muted"}, answer.error));
      return;
    }
    const logs = answer.logs || [];
    this.logs.replaceChildren(...(logs.length ? logs.map((log) => el("div", {class: "log"},
      el("div", {class: "muted"}, `${log.folder}/${log.file} (${log.size} bytes)`),
      el("pre", {}, log.text || "(empty)")))
      : [el("p", {class: "muted"}, "no agent logs on this node yet (a group's processes " +
            "write them as they print and end)")]));
  }

  /** A tick: keep the state badge current between refreshes. */
  tick(tick) {
    const node = this.name && (tick.nodes || {})[this.name];
    const badge = document.getElementById("node-state");
    if (!node || !badge) return;
    badge.textContent = node.state;
    badge.className = `badge ${node.state === "never registered" ? "never" : node.state}`;
  }
}
