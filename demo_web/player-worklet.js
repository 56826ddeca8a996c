// The audio thread's half of player.js: streams' PCM in, one gapless output.
//
// Streams play one after another in the order their first frame arrived (a client
// may have several utterances in flight; their frames interleave on the wire). A
// stream starts once `prebuffer` samples of it are here (or all of it); a stream that
// runs dry before its last frame and then gets more audio counts one underrun, and
// the prebuffer grows for the streams after it. `stop` fades the playing stream out
// over `fade` samples and forgets every stream queued.

const REPORT_EVERY = 4; // render quanta (128 samples) between position reports
const SOUND = 1e-3; // |sample| above which output counts as sound (first-sound times)

class VoxlivePlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions ?? {};
    this.prebuffer = o.prebufferSamples ?? 0;
    this.maxPrebuffer = o.maxPrebufferSamples ?? Math.round(sampleRate * 0.3);
    this.fadeLength = Math.max(1, o.fadeSamples ?? Math.round(sampleRate * 0.005));
    this.streams = new Map(); // id → { chunks, at, buffered, last, playing, dry, played, sounded }
    this.order = [];
    this.dropped = new Set(); // stopped streams whose frames may still arrive
    this.played = 0;
    this.underruns = 0;
    this.fadingStream = null; // the stream fading out after a stop
    this.fading = 0; // samples of its fade left
    this.peak = 0;
    this.quanta = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    switch (m.type) {
      case "push": return this.push(m.stream, m.samples, m.last);
      case "stop":
        this.port.postMessage({ type: "stopped", played: this.played, wallMs: Date.now() });
        return this.stop(null);
      case "drop": return this.stop(m.stream);
      case "forget": this.dropped.delete(m.stream); return undefined;
      default: return undefined;
    }
  }

  push(id, samples, last) {
    if (this.dropped.has(id)) return;
    let s = this.streams.get(id);
    if (!s) {
      s = { chunks: [], at: 0, buffered: 0, last: false, playing: false, dry: false, played: 0, sounded: false };
      this.streams.set(id, s);
      this.order.push(id);
    }
    if (samples.length) {
      if (s.dry) {
        this.underruns++;
        this.prebuffer = Math.min(this.maxPrebuffer, this.prebuffer + Math.round(sampleRate * 0.04));
        this.port.postMessage({ type: "underrun", stream: id, underruns: this.underruns });
        s.dry = false;
      }
      s.chunks.push(samples);
      s.buffered += samples.length;
    }
    s.last = s.last || last;
  }

  /** Fade the playing stream out and drop the rest: all streams (null) or one. */
  stop(id) {
    const head = this.order[0];
    for (const sid of id === null ? [...this.order] : [id]) {
      const s = this.streams.get(sid);
      if (sid === head && s?.playing && s.buffered > 0 && this.fadingStream === null) {
        this.fadingStream = sid; // removed once faded (process)
        this.fading = this.fadeLength;
      } else if (sid !== this.fadingStream) {
        this.remove(sid, true);
      }
    }
  }

  remove(id, dropped) {
    const s = this.streams.get(id);
    this.streams.delete(id);
    this.order = this.order.filter((x) => x !== id);
    if (dropped) this.dropped.add(id);
    if (id === this.fadingStream) this.fadingStream = null;
    if (s) this.port.postMessage({ type: "ended", stream: id, played: s.played, dropped });
  }

  process(_inputs, outputs) {
    const channels = outputs[0];
    const out = channels[0];
    const n = out.length;
    let i = 0;
    while (i < n && this.order.length) {
      const id = this.order[0];
      const s = this.streams.get(id);
      const fading = id === this.fadingStream;
      if (!s.playing) {
        if (s.buffered < this.prebuffer && !s.last) break; // waiting to start: silence
        s.playing = true;
      }
      if (s.buffered === 0 || (fading && this.fading === 0)) {
        if (fading) { this.remove(id, true); continue; }
        if (s.last) { this.remove(id, false); continue; }
        s.dry = true; // a gap in this stream, if more audio comes
        break;
      }
      const chunk = s.chunks[0];
      let take = Math.min(n - i, chunk.length - s.at);
      if (fading) take = Math.min(take, this.fading);
      for (let k = 0; k < take; k++) {
        let x = chunk[s.at + k];
        if (fading) x *= (this.fading - k) / this.fadeLength;
        out[i + k] = x;
        if (!s.sounded && (x > SOUND || x < -SOUND)) {
          s.sounded = true;
          this.port.postMessage({ type: "sound", stream: id, wallMs: Date.now(), frame: currentFrame + i + k });
        }
      }
      if (fading) this.fading -= take;
      i += take;
      s.at += take;
      s.buffered -= take;
      s.played += take;
      this.played += take;
      if (s.at === chunk.length) { s.chunks.shift(); s.at = 0; }
    }
    let peak = 0;
    for (let k = 0; k < n; k++) {
      const a = Math.abs(out[k]);
      if (a > peak) peak = a;
    }
    for (let c = 1; c < channels.length; c++) channels[c].set(out);
    this.peak = Math.max(this.peak, peak);
    if (++this.quanta % REPORT_EVERY === 0) {
      const head = this.streams.get(this.order[0]);
      this.port.postMessage({
        type: "stats", played: this.played, underruns: this.underruns, peak: this.peak,
        stream: head?.playing ? this.order[0] : null, position: head?.played ?? 0,
        frame: currentFrame + n, wallMs: Date.now(), queued: this.order.length,
        prebuffer: this.prebuffer,
      });
      this.peak = 0;
    }
    return true;
  }
}

registerProcessor("voxlive-player", VoxlivePlayer);
