// The demo page (served at / by `voxlive serve`): speak, listen, watch the figures.

import { Danmaku, DEMO_COMMENTS } from "./danmaku.js";
import { Live } from "./live.js";
import { Mouth, visemeAt } from "./mouth.js";
import { serverReads, toWav } from "./wav.js";

const $ = (id) => document.getElementById(id);
const live = new Live();
const mouth = new Mouth($("mouth"));
const danmaku = new Danmaku($("lane"), (c, deadlineMs) => speakComment(c, deadlineMs));
const rows = new Map(); // utterance id → <tr>
let demoTimer = null;
let recorder = null;
let picked = null; // the Blob to register

// Tests and curious users: the page's state, from the console.
window.voxliveDemo = { live, danmaku, mouth, ready: null, extra: null };

function showError(where, error) {
  const el = $(where);
  el.textContent = error ? String(error.message ?? error) : "";
  el.hidden = !error;
  if (error) el.dataset.code = error.code ?? "";
}

function defaultServer() {
  const given = new URLSearchParams(location.search).get("server");
  if (given) return given;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
}

// ── connection ──────────────────────────────────────────────────────────────────
async function connectNow() {
  showError("connect-error", null);
  setStatus("connecting");
  try {
    const client = await live.connect($("server-url").value.trim(), { token: $("token").value });
    client.addEventListener("close", (e) => {
      setStatus("disconnected", `closed ${e.detail.code}${e.detail.reason ? `: ${e.detail.reason}` : ""}`);
      enable(false);
    });
    client.addEventListener("error", (e) => showError("connect-error", e.detail));
    setStatus("connected", `session ${client.welcome.session} · ${client.audio.sample_rate} Hz ${client.audio.format}`);
    describe(client);
    enable(true);
    await refreshVoices();
  } catch (err) {
    setStatus("disconnected");
    showError("connect-error", err);
    enable(false);
  }
}

function setStatus(state, detail = "") {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = detail ? `${state} · ${detail}` : state;
}

function enable(on) {
  for (const id of ["speak", "stop", "demo-chat", "send-comment", "record", "register"]) $(id).disabled = !on;
}

function describe(client) {
  const caps = client.capabilities;
  const builtin = caps.builtin_voices.map((v) => `${v.voice} (${v.language})`).join(", ") || caps.voices.join(", ");
  $("caps").textContent = `voices: ${builtin} · emotions: ${caps.emotions.join(", ")}`
    + ` · registration: ${caps.voice_registration ? (caps.consent_required ? "yes, with consent" : "yes") : "no"}`
    + ` · max text ${client.limits.max_text_chars} chars`;
  const names = [...caps.emotions, ...Object.keys(caps.emotion_aliases)];
  $("emotions").replaceChildren(...names.map((n) => new Option(n)));
  const hasZh = caps.voices.includes("zh");
  $("lang").querySelectorAll("option.voice-lang").forEach((o) => o.remove());
  for (const v of caps.builtin_voices) {
    const o = new Option(v.language, v.voice);
    o.className = "voice-lang";
    $("lang").append(o);
  }
  danmaku.comments = DEMO_COMMENTS.filter(([, , lang]) => lang !== "zh" || hasZh);
}

// ── speaking ────────────────────────────────────────────────────────────────────
function options() {
  const o = {
    emotion: $("emotion").value.trim() || null,
    intensity: Number($("intensity").value),
    speed: Number($("speed").value),
    pitch: Number($("pitch").value),
    volume: Number($("volume").value),
  };
  const voice = $("voice").value;
  if (voice) o.voice = voice;
  if ($("lang").value) o.lang = $("lang").value;
  // More speak options from the console or a benchmark, e.g. {cache: false}.
  return Object.assign(o, window.voxliveDemo.extra || {});
}

function speakNow() {
  const clickedAt = Date.now();
  showError("speak-error", null);
  live.player.resume();
  const text = $("text").value;
  try {
    const entry = live.speak(text, options(), clickedAt);
    entry.utterance.addEventListener("error", (e) => showError("speak-error", e.detail));
  } catch (err) {
    showError("speak-error", err);
  }
}

function speakComment(c, deadlineMs) {
  live.player.resume();
  try {
    const entry = live.speak(c.text, {
      emotion: c.emotion, priority: c.priority, lang: c.lang ?? "auto", deadline_ms: deadlineMs,
    }, Date.now());
    c.entry = entry;
    entry.utterance.addEventListener("error", (e) => {
      if (e.detail.code !== "expired") showError("speak-error", e.detail);
    });
    return entry.finished;
  } catch (err) {
    showError("speak-error", err);
    return null;
  }
}

function logRow(entry) {
  const u = entry.utterance;
  let tr = rows.get(entry);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.id = u.id;
    for (let i = 0; i < 7; i++) tr.append(document.createElement("td"));
    rows.set(entry, tr);
    $("log").tBodies[0].prepend(tr);
    while ($("log").tBodies[0].rows.length > 50) $("log").tBodies[0].lastChild.remove();
  }
  const done = entry.done;
  const fmt = (x, digits = 0) => (x == null ? "–" : Number(x).toFixed(digits));
  const cells = [
    u.id,
    entry.text.length > 40 ? `${entry.text.slice(0, 39)}…` : entry.text,
    status(entry),
    fmt(u.started?.queue_ms, 1),
    fmt(entry.firstSoundMs),
    fmt(done?.rtf, 3),
    String(entry.underruns),
  ];
  cells.forEach((text, i) => { tr.cells[i].textContent = text; });
  tr.dataset.status = status(entry).split(" · ")[0];
}

/** What the listener got: the server's status, "stopped" when Stop cut the audio. */
function status(entry) {
  const done = entry.done;
  if (entry.stopped && (!done || done.status === "completed")) return "stopped";
  if (done?.error) return `${done.status} · ${done.error.code}`;
  if (done) return done.status;
  return entry.utterance.started ? "playing" : "queued";
}

// ── voices ──────────────────────────────────────────────────────────────────────
async function refreshVoices() {
  const client = live.client;
  const select = $("voice");
  const keep = select.value;
  const builtin = client.capabilities.voices.map((v) => new Option(`${v} (built-in)`, v));
  let registered = [];
  if (client.capabilities.voice_registration) {
    try {
      registered = await client.listVoices();
    } catch (err) {
      showError("voice-error", err);
    }
  }
  select.replaceChildren(new Option("default", ""), ...builtin,
    ...registered.map((v) => new Option(`${v.voice} (${v.scope})`, v.voice)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  $("voice-list").replaceChildren(...registered.map((v) => {
    const li = document.createElement("li");
    li.dataset.voice = v.voice;
    const s = v.summary ?? {};
    const consent = v.consent ? ` · consent: ${v.consent.by}` : "";
    li.textContent = `${v.voice} · ${v.scope} · ${fmtSummary(s)}${consent} `;
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "Delete";
    del.addEventListener("click", async () => {
      showError("voice-error", null);
      try {
        await client.deleteVoice(v.voice);
      } catch (err) {
        showError("voice-error", err);
      }
      await refreshVoices();
    });
    li.append(del);
    return li;
  }));
}

function fmtSummary(s) {
  const parts = [];
  if (s.usable_s != null) parts.push(`${s.usable_s.toFixed(1)} s usable`);
  if (s.snr_db != null) parts.push(`SNR ${s.snr_db.toFixed(0)} dB`);
  if (s.clipping != null) parts.push(`clipping ${(s.clipping * 100).toFixed(2)} %`);
  if (s.similarity != null) parts.push(`similarity ${s.similarity.toFixed(2)}`);
  return parts.join(" · ");
}

async function toggleRecord() {
  showError("voice-error", null);
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    showError("voice-error", new Error(`microphone: ${err.message}`));
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  const started = Date.now();
  const timer = setInterval(() => {
    const s = (Date.now() - started) / 1000;
    $("voice-summary").textContent = `recording ${s.toFixed(1)} s (3–30 s of speech)`;
    if (s >= 30) recorder?.stop();
  }, 200);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = () => {
    clearInterval(timer);
    stream.getTracks().forEach((t) => t.stop());
    picked = new Blob(chunks, { type: recorder.mimeType });
    picked.label = `recording, ${((Date.now() - started) / 1000).toFixed(1)} s`;
    recorder = null;
    $("record").textContent = "Record";
    $("voice-summary").textContent = `${picked.label}: press Register`;
  };
  recorder.start(250);
  $("record").textContent = "Stop recording";
}

async function register() {
  showError("voice-error", null);
  const file = $("voice-file").files[0];
  const source = picked ?? file;
  if (!source) {
    showError("voice-error", new Error("record something or pick a file first"));
    return;
  }
  // SPEC.md §4.6 (v1.7): the speaker's consent goes with every registration.
  const speaker = $("voice-speaker").value.trim();
  if (!$("voice-consent").checked || !speaker) {
    showError("voice-error", new Error("the speaker must consent: give their name and tick the box"));
    return;
  }
  const consent = { granted: true, by: speaker, method: "confirmed in the voxlive page", at: new Date().toISOString() };
  $("register").disabled = true;
  $("voice-summary").textContent = "analysing…";
  try {
    const audio = source === file && serverReads(file) ? file : await toWav(source);
    const ready = await live.client.registerVoice(audio, {
      name: $("voice-name").value.trim() || null, scope: $("voice-scope").value, consent,
    });
    $("voice-summary").textContent = `registered ${ready.voice}${ready.cached ? " (cached)" : ""}: ${fmtSummary(ready.summary)}`;
    $("voice-summary").dataset.voice = ready.voice;
    picked = null;
    await refreshVoices();
    $("voice").value = ready.voice;
  } catch (err) {
    $("voice-summary").textContent = "";
    showError("voice-error", err);
  } finally {
    $("register").disabled = false;
  }
}

// ── danmaku ─────────────────────────────────────────────────────────────────────
function toggleDemoChat() {
  if (demoTimer) {
    clearInterval(demoTimer);
    demoTimer = null;
    $("demo-chat").textContent = "Start demo chat";
    return;
  }
  let i = 0;
  const comments = danmaku.comments ?? DEMO_COMMENTS;
  const next = () => {
    const [text, emotion] = comments[i++ % comments.length];
    danmaku.add({ text, emotion });
  };
  next();
  demoTimer = setInterval(next, 2500);
  $("demo-chat").textContent = "Stop demo chat";
}

function sendComment() {
  const text = $("comment").value.trim();
  if (!text) return;
  danmaku.add({
    text, emotion: $("comment-emotion").value.trim() || null, priority: $("comment-priority").value,
  });
  $("comment").value = "";
}

function countDanmaku() {
  $("danmaku-counts").textContent = `spoken ${danmaku.spoken.length} · dropped ${danmaku.dropped.length}`;
}

// ── animation: level meter and mouth ────────────────────────────────────────────
let level = 0;
function frame() {
  const player = live.player;
  if (player) {
    level = Math.max(player.peak, level * 0.9);
    $("level").value = level;
    const now = live.playing();
    mouth.set(now ? visemeAt(now.entry.utterance.marks, now.sample) : "sil");
  }
  mouth.draw();
  requestAnimationFrame(frame);
}

// ── wiring ──────────────────────────────────────────────────────────────────────
for (const id of ["intensity", "speed", "pitch", "volume"]) {
  const input = $(id);
  const out = document.querySelector(`output[for=${id}]`);
  const unit = { pitch: " st", volume: " dB" }[id] ?? "";
  const show = () => { out.textContent = `${Number(input.value).toFixed(id === "volume" ? 0 : id === "pitch" ? 1 : 2)}${unit}`; };
  input.addEventListener("input", show);
  show();
}
$("server-url").value = defaultServer();
$("connect-form").addEventListener("submit", (e) => { e.preventDefault(); connectNow(); });
$("speak").addEventListener("click", speakNow);
$("stop").addEventListener("click", () => { danmaku.clear(); live.stop(); });
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) speakNow(); });
$("record").addEventListener("click", toggleRecord);
$("voice-file").addEventListener("change", () => { picked = null; });
$("register").addEventListener("click", register);
$("demo-chat").addEventListener("click", toggleDemoChat);
$("send-comment").addEventListener("click", sendComment);
$("comment").addEventListener("keydown", (e) => { if (e.key === "Enter") sendComment(); });
for (const type of ["spoken", "dropped", "sent"]) danmaku.addEventListener(type, countDanmaku);
live.addEventListener("update", (e) => logRow(e.detail));
requestAnimationFrame(frame);
window.voxliveDemo.ready = connectNow();
