// The event log: every command (time, sender, agent/group, target, outcome
// counts) and the output of `seer run` scripts as they print, newest at the
// bottom, at most MAX_ROWS rows.

import {el, formatClock, formatCounts, formatTarget} from "./format.js";

const MAX_ROWS = 500;
const MAX_OUTPUT_CHARS = 20000;

export class EventLog {
  constructor(container) {
    this.container = container;
    this.outputs = {};  // run id -> its <pre>
  }

  /** A new stream: the latest commands and the scripts remembered, afresh. */
  hello(hello) {
    this.container.replaceChildren();
    this.outputs = {};
    for (const entry of hello.commands || []) this.command(entry, false);
    for (const run of hello.runs || []) {
      this.run({...run, event: "started"}, false);
      if (run.tail) this.output({run: run.run, pieces: [["stdout", run.tail]]}, false);
      if (run.ended) this.run({...run, event: "ended"}, false);
    }
    this.scroll(true);
  }

  add(row, scroll = true) {
    const stick = this.atBottom();
    this.container.append(row);
    while (this.container.childElementCount > MAX_ROWS) {
      const first = this.container.firstElementChild;
      for (const [run, pre] of Object.entries(this.outputs)) {
        if (first.contains(pre)) delete this.outputs[run];
      }
      first.remove();
    }
    if (scroll) this.scroll(stick);
  }

  atBottom() {
    const c = this.container;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 30;
  }

  scroll(stick) {
    if (stick) this.container.scrollTop = this.container.scrollHeight;
  }

  command(entry, scroll = true) {
    const counts = entry.counts || {};
    const bad = (counts.failed || 0) + (counts.unconfirmed || 0);
    const what = entry.type === "COMMAND" || entry.type === "SET"
      ? `${entry.type === "SET" ? "SET" : entry.command} ${entry.agent}/${entry.group}`
      : `${entry.type} ${entry.command || ""}`;
    this.add(el("div", {class: `row command${bad ? " failed" : ""}`},
      el("span", {class: "when"}, formatClock(entry.time)),
      el("span", {class: "who"}, entry.sender || "-"),
      el("span", {class: "what"}, `${what} → ${formatTarget(entry.target)}: ` +
         formatCounts(counts) + (entry.first_error ? ` (${entry.first_error})` : ""))),
      scroll);
  }

  run(run, scroll = true) {
    const ended = run.event === "ended";
    const how = run.signal ? `signal ${run.signal}` : `exit code ${run.code}`;
    this.add(el("div", {class: "row run"},
      el("span", {class: "when"}, formatClock(ended ? run.ended : run.started)),
      el("span", {class: "who"}, run.experimenter || "-"),
      el("span", {class: "what"}, ended ? `seer run ${run.run} ended (${how})`
                                        : `seer run ${run.run} started`)), scroll);
  }

  output(data, scroll = true) {
    let pre = this.outputs[data.run];
    if (!pre || !pre.isConnected) {
      pre = el("pre", {});
      this.outputs[data.run] = pre;
      this.add(el("div", {class: "row output"},
        el("span", {class: "when"}, formatClock(Date.now() / 1000)),
        el("span", {class: "who"}, data.run),
        el("span", {class: "what"}, pre)), false);
    }
    const stick = this.atBottom();
    let text = pre.textContent + data.pieces.map(([, piece]) => piece).join("");
    if (data.left_out) text += `\n[${data.left_out} characters left out: see the run's output.log]\n`;
    pre.textContent = text.slice(-MAX_OUTPUT_CHARS);
    if (scroll) this.scroll(stick);
  }

  gap(data) {
    this.add(el("div", {class: "row"}, el("span", {class: "when"}, ""),
      el("span", {class: "who"}, "dashboard"),
      el("span", {class: "what muted"}, `${data.skipped} update(s) skipped while this page ` +
         "was not reading")));
  }
}
