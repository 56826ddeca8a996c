// Playback of voxlive audio in the browser: an AudioWorklet (player-worklet.js) with a
// small jitter buffer, at the AudioContext's own rate (ask the server for it:
// `connect(url, { sampleRate: player.sampleRate })`).
//
//   const player = await Player.create();
//   vox.addEventListener("audio", (e) => player.push(e.detail));
//   player.stop();   // barge-in: fades out at once, drops what is queued
//
// Events: `sound` ({ stream, wallMs }: the first non-silent sample of a stream left the
// worklet, Date.now() time), `ended` ({ stream, played, dropped }), `underrun`,
// `stopped` ({ played }: the worklet's count when a stop reached it),
// `stats` ({ played, underruns, peak, stream, position, ... } every ~10 ms).

export class Player extends EventTarget {
  /**
   * Options: `context` (an AudioContext; a new one by default), `prebufferMs` (audio
   * held before a stream starts, 80 ms: less than the server's first chunk, so it
   * costs no latency; it grows by 40 ms after each underrun), `fadeMs` (Stop's fade-out).
   */
  static async create({ context = null, prebufferMs = 80, fadeMs = 5 } = {}) {
    const ctx = context ?? new AudioContext({ latencyHint: "interactive" });
    if (!ctx.audioWorklet) {
      throw new Error("AudioWorklet is unavailable: open the page from localhost or over https");
    }
    await ctx.audioWorklet.addModule(new URL("./player-worklet.js", import.meta.url));
    const node = new AudioWorkletNode(ctx, "voxlive-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: {
        prebufferSamples: Math.round((ctx.sampleRate * prebufferMs) / 1000),
        fadeSamples: Math.round((ctx.sampleRate * fadeMs) / 1000),
      },
    });
    node.connect(ctx.destination);
    return new Player(ctx, node);
  }

  constructor(ctx, node) {
    super();
    this.ctx = ctx;
    this.node = node;
    this.played = 0;
    this.underruns = 0;
    this.peak = 0;
    this.pushed = 0;
    this.position = { stream: null, samples: 0, wallMs: 0 };
    this.streams = new Map(); // stream → { pushed, played, soundAt, ended }
    node.port.onmessage = (e) => this._onMessage(e.data);
  }

  get sampleRate() { return this.ctx.sampleRate; }

  /** Resume the context (browsers start it suspended until a click). */
  resume() { return this.ctx.state === "running" ? Promise.resolve() : this.ctx.resume(); }

  /** Queue one audio frame of `voxlive.js` ({ stream, samples, last, cancelled }). */
  push(frame) {
    const s = this._stream(frame.stream);
    if (s.dropped) return;
    s.pushed += frame.samples.length;
    this.pushed += frame.samples.length;
    const samples = frame.samples;
    this.node.port.postMessage(
      { type: "push", stream: frame.stream, samples, last: frame.last },
      [samples.buffer],
    );
  }

  /** Barge-in: fade the playing stream out now and drop every queued one. */
  stop() {
    // What had been played when Stop was pressed, as this thread last heard; the
    // worklet's own count when it got the message follows as `stopped`.
    this.stopPressed = { played: this.played, wallMs: Date.now() };
    for (const s of this.streams.values()) s.dropped = true;
    this.node.port.postMessage({ type: "stop" });
  }

  /** Drop one stream (its utterance was cancelled). */
  drop(stream) {
    this._stream(stream).dropped = true;
    this.node.port.postMessage({ type: "drop", stream });
  }

  /** Where playback is now: the stream and the sample of it being heard, estimated. */
  now() {
    const p = this.position;
    if (p.stream === null) return p;
    const ahead = ((Date.now() - p.wallMs) * this.sampleRate) / 1000;
    const latency = (this.ctx.outputLatency || this.ctx.baseLatency || 0) * this.sampleRate;
    return { stream: p.stream, samples: Math.max(0, p.samples + ahead - latency) };
  }

  close() { return this.ctx.close(); }

  _stream(id) {
    let s = this.streams.get(id);
    if (!s) {
      s = { pushed: 0, played: 0, soundAt: null, ended: false, dropped: false };
      this.streams.set(id, s);
    }
    return s;
  }

  _onMessage(m) {
    switch (m.type) {
      case "stats":
        this.played = m.played;
        this.underruns = m.underruns;
        this.peak = m.peak;
        this.position = { stream: m.stream, samples: m.position, wallMs: m.wallMs };
        break;
      case "sound":
        this._stream(m.stream).soundAt = m.wallMs;
        break;
      case "ended": {
        const s = this._stream(m.stream);
        s.played = m.played;
        s.ended = true;
        // Stream ids are the server's, reused across a long session: forget the old one.
        setTimeout(() => {
          if (this.streams.get(m.stream) === s) this.streams.delete(m.stream);
          this.node.port.postMessage({ type: "forget", stream: m.stream });
        }, 30000);
        break;
      }
      case "stopped":
        this.stopHeard = { played: m.played, wallMs: m.wallMs };
        break;
      case "underrun":
        this.underruns = m.underruns;
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent(m.type, { detail: m }));
  }
}
