// Recorded or picked audio → a 16-bit mono WAV the server accepts (SPEC.md §4.6 lists
// WAV, FLAC, OGG, MP3, AIFF; Chromium records WebM/Opus, so recordings are converted).

const ACCEPTED = /\.(wav|wave|flac|ogg|oga|opus|mp3|aif|aiff)$/i;

/** Whether the server reads this file as it is. */
export function serverReads(file) {
  return ACCEPTED.test(file.name ?? "");
}

/** Decode any audio the browser can (a Blob) and encode it as mono WAV at `rate` Hz. */
export async function toWav(blob, rate = 24000) {
  const bytes = await blob.arrayBuffer();
  const probe = new OfflineAudioContext(1, 1, rate);
  const decoded = await probe.decodeAudioData(bytes);
  const frames = Math.ceil(decoded.duration * rate);
  const offline = new OfflineAudioContext(1, Math.max(1, frames), rate);
  const source = offline.createBufferSource();
  source.buffer = decoded; // mixed down to the context's one channel
  source.connect(offline.destination);
  source.start();
  const rendered = await offline.startRendering();
  return new Blob([encodeWav(rendered.getChannelData(0), rate)], { type: "audio/wav" });
}

/** float samples (−1…1) → a RIFF/WAVE file of 16-bit PCM. */
export function encodeWav(samples, rate) {
  const out = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) out.setUint8(at + i, s.charCodeAt(i)); };
  text(0, "RIFF");
  out.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  out.setUint32(16, 16, true);
  out.setUint16(20, 1, true); // PCM
  out.setUint16(22, 1, true); // mono
  out.setUint32(24, rate, true);
  out.setUint32(28, rate * 2, true);
  out.setUint16(32, 2, true);
  out.setUint16(34, 16, true);
  text(36, "data");
  out.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    out.setInt16(44 + i * 2, Math.round(x * 32767), true);
  }
  return out.buffer;
}
