// What the demo page and the overlay share: a voxlive session whose audio goes to a
// Player, and per-utterance figures as a listener perceives them.

import { connect } from "./voxlive.js";
import { Player } from "./player.js";

export class Live extends EventTarget {
  constructor() {
    super();
    this.client = null;
    this.player = null;
    this.entries = new Map(); // utterance id → entry (see speak)
    this.byStream = new Map();
  }

  /** Open the player (once) and a session at its rate. */
  async connect(url, { token = null } = {}) {
    if (!this.player) {
      this.player = await Player.create();
      this.player.addEventListener("sound", (e) => this._sound(e.detail));
      this.player.addEventListener("ended", (e) => this._ended(e.detail));
      this.player.addEventListener("underrun", (e) => {
        const entry = this.byStream.get(e.detail.stream);
        if (entry) entry.underruns++;
      });
    }
    await this.player.resume().catch(() => {}); // a page without a click yet stays suspended
    if (this.client && !this.client.closed) this.client.close();
    const client = await connect(url, { token: token || null, sampleRate: this.player.sampleRate });
    this.client = client;
    client.addEventListener("audio", (e) => this._audio(e.detail));
    client.addEventListener("close", (e) => this.dispatchEvent(new CustomEvent("close", { detail: e.detail })));
    client.addEventListener("error", (e) => this.dispatchEvent(new CustomEvent("error", { detail: e.detail })));
    return client;
  }

  /**
   * Speak `text` with the speak options; `clickedAt`: Date.now() of the user's action.
   * Returns an entry: { utterance, text, clickedAt, firstSoundMs, underruns, done,
   * finished } where `finished` settles once the audio has been heard to its end (or
   * the utterance ended without it) with the server's `done`.
   */
  speak(text, options = {}, clickedAt = Date.now()) {
    const u = this.client.speak(text, { timestamps: true, ...options });
    const entry = {
      utterance: u, text, options, clickedAt, firstSoundMs: null, underruns: 0,
      done: null, heard: false, stopped: false,
    };
    let finish;
    entry.finished = new Promise((resolve) => { finish = resolve; });
    entry._settle = () => {
      if (entry.done && (entry.heard || entry.done.stream == null || entry.stopped
        || entry.done.status !== "completed")) {
        entry.finishedAt ??= Date.now();
        finish(entry.done);
      }
    };
    this._keep(u.id, entry);
    u.addEventListener("started", () => this.byStream.set(u.stream, entry));
    u.done.then((done) => {
      entry.done = done;
      if (done.status !== "completed" && u.stream !== null) this.player.drop(u.stream);
      entry._settle();
      this.dispatchEvent(new CustomEvent("update", { detail: entry }));
    });
    this.dispatchEvent(new CustomEvent("update", { detail: entry }));
    return entry;
  }

  _keep(id, entry) {
    this.entries.delete(id); // an id reused once done: the newest entry last
    this.entries.set(id, entry);
    for (const [old, e] of this.entries) {
      if (this.entries.size <= 500) break;
      if (!e.finishedAt) continue;
      this.entries.delete(old);
      if (this.byStream.get(e.utterance.stream) === e) this.byStream.delete(e.utterance.stream);
    }
  }

  /** Barge-in: silence now, cancel everything in flight. */
  stop() {
    this.player?.stop();
    for (const entry of this.entries.values()) {
      if (!entry.finishedAt) entry.stopped = true;
    }
    if (this.client && !this.client.closed) this.client.cancel();
  }

  /** The utterance being heard and the viseme-track position in it. */
  playing() {
    const now = this.player?.now();
    if (!now || now.stream === null) return null;
    const entry = this.byStream.get(now.stream);
    return entry ? { entry, sample: now.samples } : null;
  }

  _audio(frame) {
    const entry = this.entries.get(frame.utterance.id);
    if (!entry || entry.stopped) return; // barged in: frames still on the wire
    this.player.push(frame);
  }

  _sound({ stream, wallMs }) {
    const entry = this.byStream.get(stream);
    if (entry && entry.firstSoundMs === null) {
      entry.firstSoundMs = wallMs - entry.clickedAt;
      this.dispatchEvent(new CustomEvent("update", { detail: entry }));
    }
  }

  _ended({ stream, played }) {
    const entry = this.byStream.get(stream);
    if (!entry) return;
    entry.played = played;
    entry.heard = true;
    entry._settle();
    this.dispatchEvent(new CustomEvent("update", { detail: entry }));
  }
}
