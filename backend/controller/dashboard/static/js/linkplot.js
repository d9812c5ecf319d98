// The link plot: one link's rate and drops over the last 10 minutes (uPlot),
// fetched from the controller's history when the link is clicked and moved
// along with each tick while it is open.

import {el, formatPerSecond, formatRate, formatRateShort} from "./format.js";

const WINDOW_S = 600;

export class LinkPlot {
  constructor(container, connection, onClose) {
    this.container = container;
    this.connection = connection;
    this.onClose = onClose;
    this.name = null;
    this.plot = null;
    this.data = [[], [], []];
    this.lastTime = 0;
  }

  async show(name, kind) {
    this.hide();
    this.name = name;
    this.container.hidden = false;
    const now = el("div", {id: "link-now"}, "");
    const area = el("div", {id: "link-plot"});
    this.now = now;
    this.container.replaceChildren(
      el("button", {class: "close", title: "close", onclick: () => this.onClose()}, "×"),
      el("h2", {}, name, " ", el("span", {class: "muted"}, kind === "link" ? "link" : "LAN")),
      now, area,
      el("p", {class: "muted"}, "Rate: what the members sent onto it, Ethernet headers " +
         "included. Drops: packets its interfaces and queues dropped."));
    let history;
    try {
      history = await this.connection.api("link", {name});
    } catch (error) {
      area.replaceChildren(el("p", {}, error.message));
      return;
    }
    if (name !== this.name) return;
    this.data = [history.times.slice(), history.bps.slice(), history.drops_ps.slice()];
    this.lastTime = history.times.length ? history.times[history.times.length - 1] : 0;
    this.plot = new uPlot(this.options(area.clientWidth || 340), this.data, area);
  }

  options(width) {
    return {
      width, height: 240, legend: {show: true},
      scales: {x: {time: true}, bps: {auto: true, range: (u, lo, hi) => [0, Math.max(hi, 1e3)]},
               drops: {auto: true, range: (u, lo, hi) => [0, Math.max(hi, 1)]}},
      series: [
        {},
        {label: "rate", scale: "bps", stroke: "#1c7ed6", width: 1.5,
         value: (u, v) => formatRate(v)},
        {label: "drops", scale: "drops", stroke: "#e03131", width: 1,
         value: (u, v) => (v === null ? "-" : formatPerSecond(v))},
      ],
      axes: [
        {},
        {scale: "bps", size: 50, label: "bit/s", labelSize: 14,
         values: (u, values) => values.map((v) => formatRateShort(v))},
        {scale: "drops", side: 1, size: 45, grid: {show: false}, label: "drops",
         labelSize: 14, values: (u, values) => values.map((v) => formatPerSecond(v))},
      ],
    };
  }

  hide() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.name = null;
    this.container.hidden = true;
  }

  /** A tick: the link's newest aggregate becomes the plot's last point. */
  tick(tick) {
    const link = this.name && (tick.links || {})[this.name];
    if (!link) return;
    if (this.now) {
      this.now.textContent = `now ${formatRate(link.bps)}, drops ` +
        `${formatPerSecond(link.drops_ps || 0)}` +
        (link.capacity_bps ? `, ${Math.round(100 * (link.utilization || 0))}% of ` +
                             `${formatRate(link.capacity_bps)}` : "");
    }
    const t = tick.stats_time;
    if (!this.plot || !t || t <= this.lastTime) return;
    this.lastTime = t;
    const [times, bps, drops] = this.data;
    times.push(t);
    bps.push(link.bps ?? null);
    drops.push(link.drops_ps ?? null);
    while (times.length && times[0] < t - WINDOW_S) {
      times.shift(); bps.shift(); drops.shift();
    }
    this.plot.setData(this.data);
  }
}
