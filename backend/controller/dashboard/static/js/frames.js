// Fewer animation frames while nobody is using the page.
//
// Cytoscape keeps a requestAnimationFrame loop running for as long as the
// graph lives: 60 frames a second even when nothing changed, which in a
// browser without a GPU costs about 5% of a core by itself (measured with
// bench/dashboard.py: 7.5% for the idle page, 1.4% with the graph gone). The
// page changes once a second; so while nobody moves the mouse, scrolls or
// types, frames are granted at most IDLE_FPS times a second -- an update is
// still drawn within 1/IDLE_FPS s -- and on any input at the full rate again,
// for ACTIVE_MS, so that dragging and zooming stay smooth. The page's first
// ACTIVE_MS count as active: its first picture is not held back.

const IDLE_FPS = 10;
const ACTIVE_MS = 2000;

const nativeRequest = window.requestAnimationFrame.bind(window);
const nativeCancel = window.cancelAnimationFrame.bind(window);
let lastInput = performance.now();
let nextId = 1;
// Our own ids (negative, never a native one) -> {timer} while waiting, then {frame}.
const waiting = new Map();

for (const type of ["pointerdown", "pointermove", "wheel", "keydown", "touchstart"]) {
  window.addEventListener(type, () => { lastInput = performance.now(); },
                          {capture: true, passive: true});
}

window.requestAnimationFrame = (callback) => {
  if (performance.now() - lastInput < ACTIVE_MS) return nativeRequest(callback);
  const id = -(nextId++);
  const entry = {};
  entry.timer = setTimeout(() => {
    entry.frame = nativeRequest((time) => { waiting.delete(id); callback(time); });
  }, 1000 / IDLE_FPS);
  waiting.set(id, entry);
  return id;
};

window.cancelAnimationFrame = (id) => {
  const entry = waiting.get(id);
  if (!entry) return nativeCancel(id);
  clearTimeout(entry.timer);
  if (entry.frame !== undefined) nativeCancel(entry.frame);
  waiting.delete(id);
};
