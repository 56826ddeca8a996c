// voxlive.js — a small client of the voxlive streaming TTS protocol (protocol/SPEC.md),
// for browsers and anything else that runs JavaScript with a WebSocket.
//
//   import { connect } from "./voxlive.js";
//   const vox = await connect("ws://127.0.0.1:8765", { sampleRate: 48000 });
//   const u = vox.speak("Hello there!", { emotion: "happy", timestamps: true });
//   u.addEventListener("audio", (e) => play(e.detail.samples));   // Float32Array
//   const done = await u.done;                                      // { status, ... }
//
// Control messages go as msgpack when the vendored build (vendor/msgpack.min.js, the
// MessagePack community's @msgpack/msgpack) is loaded or passed in, as JSON otherwise.

const PROTOCOL_VERSION = 1;
const AUDIO_KIND = 0x01;
const FLAG_LAST = 0x01;
const FLAG_CANCELLED = 0x02;
const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** The speak options of SPEC.md §4.4, by their wire names. */
export const SPEAK_OPTIONS = [
  "voice", "lang", "emotion", "intensity", "speed", "pitch", "volume",
  "priority", "deadline_ms", "timestamps", "seed", "cache",
];

/** Codes with which the server rejects an utterance's opening message: no `done` follows. */
const REJECTING = new Set([
  "invalid_message", "duplicate_id", "too_many_inflight", "text_too_long", "empty_text",
  "unsupported", "unknown_type", "message_too_big", "malformed", "rate_limited", "text_rejected",
]);

/** An `error` from the server (SPEC.md §5.5), or a client-side failure. */
export class VoxliveError extends Error {
  constructor(code, message, { id = null, retryable = false, retryAfterMs = null } = {}) {
    super(`${code}: ${message}`);
    this.name = "VoxliveError";
    this.code = code;
    this.detail = message;
    this.id = id;
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }

  static fromMessage(msg) {
    return new VoxliveError(msg.code, msg.message, {
      id: msg.id ?? null, retryable: !!msg.retryable, retryAfterMs: msg.retry_after_ms ?? null,
    });
  }
}

/** Parse one binary audio frame (SPEC.md §8); null when it is not one. */
export function parseAudioFrame(buffer, format = "s16le") {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : buffer;
  if (bytes.byteLength < 1 || bytes[0] !== AUDIO_KIND) return null;
  if (bytes.byteLength < 16) throw new VoxliveError("malformed", "audio frame shorter than its header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint8(1);
  const headerLen = view.getUint16(2, true);
  if (headerLen < 16 || headerLen > bytes.byteLength) {
    throw new VoxliveError("malformed", `audio frame header_len ${headerLen} out of range`);
  }
  const pcm = bytes.slice(headerLen); // own, aligned copy
  let samples;
  if (format === "f32le") {
    samples = new Float32Array(pcm.buffer, 0, pcm.byteLength >> 2);
  } else {
    const ints = new Int16Array(pcm.buffer, 0, pcm.byteLength >> 1);
    samples = new Float32Array(ints.length);
    for (let i = 0; i < ints.length; i++) samples[i] = ints[i] / 32768;
  }
  return {
    stream: view.getUint32(4, true),
    seq: view.getUint32(8, true),
    offset: view.getUint32(12, true),
    last: (flags & FLAG_LAST) !== 0,
    cancelled: (flags & FLAG_CANCELLED) !== 0,
    samples,
  };
}

/** The vendored msgpack build, loaded once as a classic script next to this module. */
let msgpackLoading = null;
export function loadMsgpack(url = new URL("./vendor/msgpack.min.js", import.meta.url).href) {
  if (globalThis.MessagePack) return Promise.resolve(globalThis.MessagePack);
  if (typeof document === "undefined") return Promise.resolve(null);
  msgpackLoading ??= new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = url;
    script.onload = () => resolve(globalThis.MessagePack ?? null);
    script.onerror = () => resolve(null); // JSON then
    document.head.append(script);
  });
  return msgpackLoading;
}

function event(type, detail) {
  return new CustomEvent(type, { detail });
}

/**
 * One utterance: `speak` or a streamed one (`append`/`flush`/`end`).
 *
 * Events (CustomEvent, data in `detail`): `started` (the server's message), `audio`
 * (a parsed frame, `samples` a Float32Array), `marks` (words, phonemes, visemes in
 * samples of the session's rate, on the utterance's timeline), `error` (VoxliveError;
 * the utterance may go on), `done` (the server's `done`, or `status: "rejected"`).
 */
export class Utterance extends EventTarget {
  constructor(client, id, options, streamed) {
    super();
    this.client = client;
    this.id = id;
    this.options = options;
    this.streamed = streamed;
    this.stream = null;
    this.started = null;
    this.samples = 0;
    this.marks = [];
    this.errors = [];
    this.finished = false;
    this.ended = !streamed;
    this.openedAt = performance.now();
    this.firstAudioAt = null;
    this.done = new Promise((resolve) => { this._resolve = resolve; });
  }

  /** Streamed: the next piece of text, as is (keep its spaces). */
  append(text) {
    this._needOpen("append");
    const msg = { type: "append", id: this.id, text };
    if (!this._opened) Object.assign(msg, this.options);
    this._opened = true;
    this._appends = (this._appends ?? 0) + 1;
    this.client.send(msg);
    return this;
  }

  /** Streamed: speak the buffered text now, sentence end or not. */
  flush() {
    this._needOpen("flush");
    this.client.send({ type: "flush", id: this.id });
    return this;
  }

  /** Streamed: no more text; `done` follows once the audio is out. */
  end() {
    this._needOpen("end");
    this.ended = true;
    if (this._opened) this.client.send({ type: "end", id: this.id });
    else this._finish({ type: "done", id: this.id, stream: null, status: "cancelled", samples: 0 });
    return this;
  }

  /** Stop it: the server fades out and answers `done` with status `cancelled`. */
  cancel() {
    if (this.finished) return;
    this.ended = true;
    if (this._opened || !this.streamed) this.client.send({ type: "cancel", id: this.id });
    else this._finish({ type: "done", id: this.id, stream: null, status: "cancelled", samples: 0 });
  }

  _needOpen(what) {
    if (!this.streamed) throw new VoxliveError("invalid_message", `${what}: ${this.id} was opened by speak`);
    if (this.ended) throw new VoxliveError("invalid_message", `${what}: ${this.id} is ended`);
  }

  _finish(done) {
    if (this.finished) return;
    this.finished = true;
    this.client._forget(this);
    this.dispatchEvent(event("done", done));
    this._resolve(done);
  }
}

/**
 * A session: one WebSocket, `hello`/`welcome` done (see `connect`).
 *
 * Events: `error` (a VoxliveError about the connection, not an utterance),
 * `close` ({ code, reason }), `audio` (every frame, with its utterance: `detail.utterance`).
 */
export class VoxliveClient extends EventTarget {
  constructor(ws, { encode, decode, format }) {
    super();
    this.ws = ws;
    this._encode = encode;
    this._decode = decode;
    this.format = format;
    this.welcome = null;
    this.utterances = new Map(); // by id
    this.byStream = new Map(); // stream id → utterance
    this.requests = new Map(); // request id → { resolve, reject, type }
    this.closed = null;
    this._ids = 0;
  }

  /** `welcome.capabilities` (§5.1), with the defaults older servers leave out. */
  get capabilities() {
    const caps = this.welcome?.capabilities ?? {};
    return { emotion_aliases: {}, builtin_voices: [], ...caps };
  }

  get limits() { return this.welcome?.limits ?? {}; }

  /** The session's output audio: { sample_rate, format, frame_ms, channels }. */
  get audio() { return this.welcome?.audio; }

  /** Say a whole text. `options`: the speak options (§4.4) and `id`. */
  speak(text, options = {}) {
    const { id, ...rest } = options;
    const u = this._open(id, rest, false);
    this.send({ type: "speak", id: u.id, text, ...u.options });
    return u;
  }

  /** Open a streamed utterance; its first `append` carries the options. */
  stream(options = {}) {
    const { id, ...rest } = options;
    return this._open(id, rest, true);
  }

  /** Cancel one utterance (by id or object), or every one in flight. */
  cancel(utterance = null) {
    if (utterance === null) {
      for (const u of this.utterances.values()) if (u.streamed && !u._opened) u.cancel();
      this.send({ type: "cancel" });
      return;
    }
    const u = typeof utterance === "string" ? this.utterances.get(utterance) : utterance;
    if (u) u.cancel();
  }

  /**
   * Register a reference clip (WAV, FLAC, OGG, MP3, AIFF; 3–30 s of speech).
   * `audio`: Blob, ArrayBuffer or Uint8Array. `consent` (v1.7, §4.6): the speaker's
   * consent, `{ granted, by, method, at, statement }` (`at`: an ISO 8601 date or
   * date-time, e.g. `new Date().toISOString()`); required with `granted: true` when
   * `capabilities.consent_required`. Resolves to `voice.ready` (§5.6); rejects with a
   * VoxliveError (`too_short`, `silent`, `consent_required`, …).
   */
  async registerVoice(audio, { name = null, scope = "session", chunkBytes = 48 * 1024, consent = null } = {}) {
    let bytes = audio;
    if (typeof Blob !== "undefined" && audio instanceof Blob) bytes = await audio.arrayBuffer();
    if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
    if (!(bytes instanceof Uint8Array)) throw new TypeError("registerVoice: audio must be bytes or a Blob");
    // Chunk 0 also carries the consent: leave room for it.
    const extra = consent == null ? 0 : new TextEncoder().encode(JSON.stringify(consent)).length;
    if (!this._binary) chunkBytes = Math.min(chunkBytes, Math.floor((this.limits.max_message_bytes - extra) * 0.7) || chunkBytes);
    const id = this._requestId();
    const answer = this._request(id, "voice.ready");
    const chunks = Math.max(1, Math.ceil(bytes.byteLength / chunkBytes));
    for (let seq = 0; seq < chunks; seq++) {
      const part = bytes.subarray(seq * chunkBytes, (seq + 1) * chunkBytes);
      const msg = { type: "voice.register", id, seq, final: seq === chunks - 1, audio: this._bytes(part) };
      if (seq === 0) Object.assign(msg, { name, scope }, consent == null ? {} : { consent });
      this.send(msg);
    }
    return answer;
  }

  /** The voices this session can use: [{ voice, scope, summary }]. */
  async listVoices() {
    const id = this._requestId();
    const answer = this._request(id, "voice.list");
    this.send({ type: "voice.list", id });
    return (await answer).voices;
  }

  /** Delete a registered voice; resolves to whether it existed for this session. */
  async deleteVoice(voice) {
    const id = this._requestId();
    const answer = this._request(id, "voice.deleted");
    this.send({ type: "voice.delete", id, voice });
    return (await answer).deleted;
  }

  /** Close the session (1000); in-flight utterances end with `done` status `cancelled`. */
  close(code = 1000, reason = "") {
    this.ws.close(code, reason);
  }

  /** Send one control message (a map) in the session's encoding. */
  send(msg) {
    if (this.closed) throw new VoxliveError("closed", `the connection is closed (${this.closed.code})`);
    this.ws.send(this._encode(msg));
  }

  _open(id, options, streamed) {
    for (const key of Object.keys(options)) {
      if (!SPEAK_OPTIONS.includes(key)) throw new TypeError(`unknown speak option ${key}`);
      if (options[key] === undefined) delete options[key];
    }
    id ??= `u${++this._ids}`;
    if (!ID_RE.test(id)) throw new TypeError(`utterance id ${JSON.stringify(id)} is not 1–64 of A–Z a–z 0–9 . _ : -`);
    if (id.startsWith("req.")) throw new TypeError(`utterance ids starting with "req." are this client's request ids`);
    if (this.utterances.has(id)) throw new VoxliveError("duplicate_id", `${id} is in flight`, { id });
    const u = new Utterance(this, id, options, streamed);
    this.utterances.set(id, u);
    return u;
  }

  _forget(u) {
    if (this.utterances.get(u.id) === u) this.utterances.delete(u.id);
    if (u.stream !== null && this.byStream.get(u.stream) === u) this.byStream.delete(u.stream);
  }

  _requestId() { return `req.${++this._ids}`; }

  _request(id, type) {
    return new Promise((resolve, reject) => this.requests.set(id, { resolve, reject, type }));
  }

  get _binary() { return this._encode !== JSON.stringify; }

  _bytes(part) {
    if (this._binary) return part;
    let s = "";
    for (let i = 0; i < part.length; i += 0x8000) s += String.fromCharCode(...part.subarray(i, i + 0x8000));
    return btoa(s);
  }

  _onMessage(data) {
    if (typeof data !== "string") {
      const bytes = new Uint8Array(data);
      if (bytes[0] === AUDIO_KIND) return this._onAudio(data);
      data = bytes;
    }
    this._onControl(this._decode(data));
  }

  _onAudio(data) {
    const frame = parseAudioFrame(data, this.format);
    const u = this.byStream.get(frame.stream);
    if (!u) return; // dropped locally (§8.2)
    if (u.firstAudioAt === null) u.firstAudioAt = performance.now();
    u.samples += frame.samples.length;
    frame.utterance = u;
    u.dispatchEvent(event("audio", frame));
    this.dispatchEvent(event("audio", frame));
  }

  _onControl(msg) {
    const u = msg.id != null ? this.utterances.get(msg.id) : undefined;
    switch (msg.type) {
      case "started":
        if (!u) return;
        u.stream = msg.stream;
        u.started = msg;
        this.byStream.set(msg.stream, u);
        u.dispatchEvent(event("started", msg));
        return;
      case "marks":
        if (!u) return;
        msg.visemes ??= [];
        u.marks.push(msg);
        u.dispatchEvent(event("marks", msg));
        return;
      case "done":
        if (u) u._finish(msg);
        return;
      case "voice.ready":
      case "voice.list":
      case "voice.deleted": {
        const r = this.requests.get(msg.id);
        if (r) {
          this.requests.delete(msg.id);
          r.resolve(msg);
        }
        return;
      }
      case "error":
        return this._onError(msg, u);
      default:
        return; // a later revision's message: ignored (§3)
    }
  }

  _onError(msg, u) {
    const error = VoxliveError.fromMessage(msg);
    // Since 1.6 `about` says which namespace the id is in; before, request ids are
    // told apart by their own prefix (`req.`), which utterance ids here never use.
    const request = msg.id != null && msg.about !== "utterance" ? this.requests.get(msg.id) : undefined;
    if (msg.about === "request" && !request) {
      this.dispatchEvent(event("error", error));
      return;
    }
    if (request) {
      this.requests.delete(msg.id);
      request.reject(error);
      return;
    }
    if (!u) {
      this.dispatchEvent(event("error", error));
      return;
    }
    u.errors.push(error);
    u.dispatchEvent(event("error", error));
    // An utterance whose opening message was refused never opens: no `done` follows
    // (§4.5, §5.5). `unsupported` about a registered voice comes with a `done` (§4.6).
    const registered = msg.code === "unsupported" && u.options.voice != null
      && !this.capabilities.voices.includes(u.options.voice);
    const opening = !u.streamed || u._appends <= 1;
    if (u.stream === null && opening && REJECTING.has(msg.code) && !registered) {
      u._finish({ type: "done", id: u.id, stream: null, status: "rejected", samples: 0, error });
    }
  }

  _onClose(code, reason) {
    this.closed = { code, reason };
    const error = new VoxliveError("closed", `connection closed (${code}${reason ? `: ${reason}` : ""})`);
    for (const u of [...this.utterances.values()]) {
      u._finish({ type: "done", id: u.id, stream: u.stream, status: "cancelled", samples: u.samples, closed: true });
    }
    for (const r of this.requests.values()) r.reject(error);
    this.requests.clear();
    this.dispatchEvent(event("close", { code, reason }));
  }
}

/**
 * Open a session: connect, send `hello`, wait for `welcome`.
 *
 * Options: `token`, `sampleRate` (Hz, null for the voice's own), `format` ("f32le" or
 * "s16le"), `frameMs`, `encoding` ("msgpack" or "json"; msgpack falls back to JSON when
 * no codec loads), `msgpack` (an object with `encode`/`decode`, instead of the vendored
 * build), `WebSocket` (a constructor, outside browsers), `timeoutMs`.
 */
export async function connect(url, options = {}) {
  const {
    token = null, sampleRate = null, format = "f32le", frameMs = 40, encoding = "msgpack",
    timeoutMs = 10000,
  } = options;
  const WS = options.WebSocket ?? globalThis.WebSocket;
  let codec = null;
  if (encoding === "msgpack") codec = options.msgpack ?? (await loadMsgpack());
  const encode = codec ? (m) => codec.encode(m) : JSON.stringify;
  const decode = codec
    ? (d) => (typeof d === "string" ? JSON.parse(d) : codec.decode(d))
    : (d) => (typeof d === "string" ? JSON.parse(d) : JSON.parse(new TextDecoder().decode(d)));

  const ws = new WS(url);
  ws.binaryType = "arraybuffer";
  const client = new VoxliveClient(ws, { encode, decode, format });
  const welcome = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new VoxliveError("timeout", `no welcome from ${url} in ${timeoutMs} ms`));
      ws.close();
    }, timeoutMs);
    ws.onopen = () => {
      const audio = { format, frame_ms: frameMs };
      if (sampleRate != null) audio.sample_rate = Math.round(sampleRate);
      ws.send(encode({ type: "hello", version: PROTOCOL_VERSION, token, audio }));
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = decode(typeof e.data === "string" ? e.data : new Uint8Array(e.data));
      } catch (err) {
        reject(new VoxliveError("malformed", `undecodable first message: ${err}`));
        return;
      }
      clearTimeout(timer);
      if (msg.type === "welcome") {
        client.welcome = msg;
        ws.onmessage = (ev) => client._onMessage(ev.data);
        resolve(client);
      } else if (msg.type === "error") {
        reject(VoxliveError.fromMessage(msg));
      } else {
        reject(new VoxliveError("malformed", `expected welcome, got ${msg.type}`));
      }
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new VoxliveError("unreachable", `cannot connect to ${url}`));
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      client._onClose(e.code, e.reason);
      reject(new VoxliveError("closed", `closed before welcome (${e.code}${e.reason ? `: ${e.reason}` : ""})`));
    };
  });
  return welcome;
}
