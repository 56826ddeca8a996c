// Danmaku: chat comments scrolling across a lane, each spoken as it arrives, in order.
//
// Comments wait in a queue; at most `ahead` of them are being spoken at once — sent,
// synthesizing or playing — so the next one is ready when the one playing ends
// (gapless), and the lane never falls minutes behind the chat. A comment
// still waiting `staleMs` after it arrived is dropped without being sent, and the
// server drops one that has not started by then (`deadline_ms`, status `expired`):
// either way the lane shows it as dropped.

/** The built-in chat: [text, emotion, language]. Chinese ones need the server's zh voice. */
export const DEMO_COMMENTS = [
  ["Hello everyone, welcome to the stream!", "happy", "en"],
  ["主播好！今天播什么？", "excited", "zh"],
  ["That jump was insane, how did you do that?", "surprised", "en"],
  ["Thanks for the gift, you are amazing!", "excited", "en"],
  ["这把太可惜了，差一点就赢了。", "sad", "zh"],
  ["Please don't go into that dark room again.", "fearful", "en"],
  ["Why does the lag always happen in the final round?", "angry", "en"],
  ["大家晚安，明天见。", "calm", "zh"],
  ["Okay chat, let's take a short break and drink some water.", "calm", "en"],
  ["哈哈哈，笑死我了！", "happy", "zh"],
  ["Wait, is that the secret boss?", "surprised", "en"],
  ["I missed the last stream, what happened?", "sad", "en"],
  ["这个操作太秀了！", "excited", "zh"],
  ["Stop camping in the corner, that's not fair!", "angry", "en"],
  ["Good luck on the next run, you've got this.", "happy", "en"],
  ["有点吓人，我不敢看了。", "fearful", "zh"],
];

let counter = 0;

export class Danmaku extends EventTarget {
  /**
   * `lane`: the element comments scroll across; `speak(comment, deadlineMs)`: sends one
   * comment, returning a promise of `{ status }` once it has been heard ("completed") or
   * has failed (the server's `done` status), or null when it cannot be sent; options: `ahead` (comments with the server at once, 2), `staleMs` (8000),
   * `scrollMs` (how long a comment takes to cross the lane, 9000).
   */
  constructor(lane, speak, { ahead = 2, staleMs = 8000, scrollMs = 9000 } = {}) {
    super();
    this.lane = lane;
    this.speak = speak;
    this.ahead = ahead;
    this.staleMs = staleMs;
    this.scrollMs = scrollMs;
    this.waiting = [];
    this.sending = new Set();
    this.spoken = [];
    this.dropped = [];
    this.rows = 4;
    this.nextRow = 0;
  }

  /**
   * A comment arrives: { text, emotion?, priority?, lang?, staleMs? }. It scrolls at once
   * and is spoken in its turn.
   */
  add(comment) {
    const c = {
      id: `dm${++counter}`, emotion: null, priority: "normal", lang: "auto",
      ...comment, arrived: performance.now(),
    };
    c.staleMs ??= this.staleMs;
    c.el = this._show(c);
    this.waiting.push(c);
    this._pump();
    return c;
  }

  /** Forget everything waiting (Stop): shown as dropped. */
  clear() {
    for (const c of this.waiting.splice(0)) this._drop(c, "stopped");
  }

  _pump() {
    while (this.sending.size < this.ahead && this.waiting.length) {
      const c = this.waiting.shift();
      const age = performance.now() - c.arrived;
      if (age >= c.staleMs) {
        this._drop(c, "stale");
        continue;
      }
      const finished = this.speak(c, Math.max(1, Math.round(c.staleMs - age)));
      if (!finished) {
        this._drop(c, "not sent");
        continue;
      }
      c.el.classList.add("speaking");
      this.sending.add(c);
      this.dispatchEvent(new CustomEvent("sent", { detail: c }));
      finished.then(
        (result) => this._settled(c, result),
        (err) => this._settled(c, { status: "failed", error: err }),
      );
    }
  }

  _settled(c, done) {
    this.sending.delete(c);
    c.el.classList.remove("speaking");
    c.done = done;
    if (done.status === "completed") {
      c.el.classList.add("spoken");
      this.spoken.push(c);
      this.dispatchEvent(new CustomEvent("spoken", { detail: c }));
      this._retire(c);
    } else {
      this._drop(c, done.status);
    }
    this._pump();
  }

  _drop(c, why) {
    c.why = why;
    c.el.classList.add("dropped");
    c.el.title = `dropped: ${why}`;
    c.el.dataset.dropped = why;
    this.dropped.push(c);
    this.dispatchEvent(new CustomEvent("dropped", { detail: c }));
    this._retire(c);
  }

  /** A comment done with that has stopped scrolling (it waited its turn): fade it away. */
  _retire(c) {
    if (!c.el.classList.contains("parked")) return;
    setTimeout(() => c.el.remove(), 1500);
  }

  _show(c) {
    const el = document.createElement("div");
    el.className = "comment";
    el.dataset.id = c.id;
    if (c.emotion) el.dataset.emotion = c.emotion;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = c.emotion ?? "neutral";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = c.text;
    el.append(tag, text);
    el.style.setProperty("--row", String(this.nextRow));
    el.style.setProperty("--scroll-ms", `${this.scrollMs}ms`);
    this.nextRow = (this.nextRow + 1) % this.rows;
    this.lane.append(el);
    // Gone once it has crossed, unless it is still waiting or speaking.
    el.addEventListener("animationend", () => {
      if (!this.waiting.includes(c) && !this.sending.has(c)) el.remove();
      else el.classList.add("parked");
    });
    return el;
  }
}
