// Numbers as people read them: rates in bit/s, times of day, outcome counts.

const RATE_UNITS = [[1e9, "Gbit/s"], [1e6, "Mbit/s"], [1e3, "kbit/s"]];

/** 15210000 -> "15.21 Mbit/s" (the page's one way of writing a rate). */
export function formatRate(bps) {
  if (bps === null || bps === undefined || !isFinite(bps)) return "-";
  for (const [scale, unit] of RATE_UNITS) {
    if (bps >= scale) return `${(bps / scale).toFixed(2)} ${unit}`;
  }
  return `${Math.round(bps)} bit/s`;
}

/** 15210000 -> "15.2M" (for a plot's axis, where room is short). */
export function formatRateShort(bps) {
  if (bps === null || bps === undefined || !isFinite(bps)) return "";
  for (const [scale, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (bps >= scale) return `${+(bps / scale).toFixed(1)}${unit}`;
  }
  return `${Math.round(bps)}`;
}

/** 12.5 -> "12.5/s"; 1234 -> "1.2k/s" */
export function formatPerSecond(value) {
  if (!value) return "0/s";
  if (value >= 1000) return `${(value / 1000).toFixed(1)}k/s`;
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)}/s`;
}

/** Seconds since 1970 -> "22:12:49" in the browser's time zone. */
export function formatClock(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleTimeString([], {hour12: false});
}

/** {applied: 3, failed: 1} -> "3 applied, 1 failed" */
export function formatCounts(counts) {
  const order = ["applied", "skipped", "failed", "unconfirmed"];
  const names = Object.keys(counts || {}).sort((a, b) => {
    const i = order.indexOf(a), j = order.indexOf(b);
    return (i < 0 ? 9 : i) - (j < 0 ? 9 : j);
  });
  return names.map((name) => `${counts[name]} ${name}`).join(", ") || "no outcome";
}

/** A target as the wire has it ("*", or a list of names) -> text. */
export function formatTarget(target) {
  if (target === "*" || target === undefined || target === null) return "all";
  if (Array.isArray(target)) {
    return target.length > 6 ? `${target.slice(0, 6).join(",")},… (${target.length})`
                             : target.join(",");
  }
  return String(target);
}

/** A small DOM builder: el("td", {class: "x"}, "text", child) -- text never as HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
