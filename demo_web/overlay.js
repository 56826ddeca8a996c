// The OBS overlay (served at /overlay): a transparent danmaku lane that speaks each
// comment, configured by URL parameters only (README, "Browser page and overlay").
//
// Comments come from `demo=1` (the built-in chat, one every `interval` ms), from
// `say=text` parameters (`say=Hello|happy`, repeatable), and at run time from
// `window.postMessage({ type: "voxlive.comment", text, emotion })` or a
// BroadcastChannel named "voxlive" carrying the same messages.

import { Danmaku, DEMO_COMMENTS } from "./danmaku.js";
import { Live } from "./live.js";
import { Mouth, visemeAt } from "./mouth.js";

const params = new URLSearchParams(location.search);
const num = (name, fallback) => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isFinite(v) ? v : fallback;
};
const server = params.get("server")
  ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
const defaults = {
  voice: params.get("voice") || undefined,
  lang: params.get("lang") ?? "auto",
  emotion: params.get("emotion") || null,
  intensity: params.has("intensity") ? num("intensity", 0.7) : undefined,
  speed: params.has("speed") ? num("speed", 1) : undefined,
  volume: params.has("volume") ? num("volume", 0) : undefined,
  priority: params.get("priority") ?? "normal",
};

const root = document.documentElement;
if (params.has("font")) root.style.setProperty("--font-size", `${num("font", 28)}px`);
if (params.has("height")) root.style.setProperty("--lane-height", `${num("height", 40)}vh`);

const live = new Live();
const lane = document.getElementById("lane");
const danmaku = new Danmaku(lane, speak, {
  ahead: num("ahead", 2), staleMs: num("stale", 8) * 1000, scrollMs: num("scroll", 9) * 1000,
});
danmaku.rows = num("rows", 4);
const canvas = document.getElementById("mouth");
const mouth = new Mouth(canvas);
canvas.hidden = params.get("mouth") !== "1";
window.voxliveOverlay = { live, danmaku, mouth, ready: null, errors: [] };

function speak(c, deadlineMs) {
  const o = { ...defaults, emotion: c.emotion ?? defaults.emotion, priority: c.priority ?? defaults.priority };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  try {
    const entry = live.speak(c.text, { ...o, deadline_ms: deadlineMs });
    entry.utterance.addEventListener("error", (e) => report(e.detail));
    return entry.finished;
  } catch (err) {
    report(err);
    return null;
  }
}

function report(err) {
  // No controls on an overlay: errors go to the browser source's console (and tests).
  window.voxliveOverlay.errors.push(String(err.message ?? err));
  console.warn("voxlive overlay:", err.message ?? err);
}

function comment(msg) {
  if (msg && msg.type === "voxlive.comment" && typeof msg.text === "string" && msg.text.trim()) {
    danmaku.add({ text: msg.text, emotion: msg.emotion ?? null, priority: msg.priority });
  }
}

/** Connect, retrying with backoff; reconnect whenever the session closes. */
async function start() {
  let backoff = 1000;
  for (;;) {
    try {
      const client = await live.connect(server, { token: params.get("token") });
      client.addEventListener("close", () => setTimeout(start, 2000)); // a server restart
      return client;
    } catch (err) {
      report(err);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(30000, backoff * 2);
    }
  }
}

function demo() {
  const hasZh = () => live.client?.capabilities.voices.includes("zh");
  let i = 0;
  const next = () => {
    const usable = DEMO_COMMENTS.filter(([, , lang]) => lang !== "zh" || hasZh());
    const [text, emotion] = usable[i++ % usable.length];
    danmaku.add({ text, emotion });
  };
  next();
  setInterval(next, num("interval", 4000));
}

function frame() {
  const now = live.playing();
  mouth.set(now ? visemeAt(now.entry.utterance.marks, now.sample) : "sil");
  if (!canvas.hidden) mouth.draw();
  requestAnimationFrame(frame);
}

window.addEventListener("message", (e) => comment(e.data));
if (typeof BroadcastChannel !== "undefined") new BroadcastChannel("voxlive").onmessage = (e) => comment(e.data);
// A browser outside OBS keeps audio suspended until a click.
window.addEventListener("pointerdown", () => live.player?.resume());
window.voxliveOverlay.ready = start().then(() => {
  for (const s of params.getAll("say")) {
    const [text, emotion] = s.split("|");
    danmaku.add({ text, emotion: emotion || null });
  }
  if (params.get("demo") === "1") demo();
});
requestAnimationFrame(frame);
