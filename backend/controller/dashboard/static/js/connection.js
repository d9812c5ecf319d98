// The page's link to its controller: the Server-Sent Events feed and the JSON API.
//
// Every request carries the token from the page's own URL (the cookie the
// page got stands in for it too). EventSource reconnects by itself after a
// lost connection (the controller restarted, say): the badge says so, and
// the "hello" of the new stream brings the whole picture again.

export class Connection {
  constructor(token, badge) {
    this.token = token || "";
    this.badge = badge;
    this.source = null;
  }

  url(path, params = {}) {
    const query = new URLSearchParams({...params, token: this.token});
    return `${path}?${query}`;
  }

  /** GET api/NAME?params as JSON; rejects with the controller's error text. */
  async api(name, params = {}) {
    const answer = await fetch(this.url(`api/${name}`, params), {cache: "no-store"});
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error || `HTTP ${answer.status}`);
    return body;
  }

  /** Open the feed; handlers: {eventName: (data) => ...}. */
  listen(handlers) {
    this.source = new EventSource(this.url("events"));
    for (const [name, handler] of Object.entries(handlers)) {
      this.source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    }
    this.source.addEventListener("open", () => this.show("live", "live"));
    this.source.addEventListener("error", () => {
      const closed = this.source.readyState === EventSource.CLOSED;
      this.show(closed ? "lost" : "", closed ? "disconnected" : "reconnecting…");
    });
  }

  show(kind, text) {
    this.badge.className = `badge ${kind}`;
    this.badge.textContent = text;
  }
}
