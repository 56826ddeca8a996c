// A simple mouth on a canvas, moved by the viseme track of `marks` (SPEC.md §5.3) in
// time with playback. The 15 visemes' shapes: how open, how wide, how rounded.

const SHAPES = {
  sil: { open: 0.0, wide: 0.5, round: 0.0 },
  PP: { open: 0.0, wide: 0.44, round: 0.1 },
  FF: { open: 0.1, wide: 0.55, round: 0.0, teeth: true },
  TH: { open: 0.18, wide: 0.55, round: 0.0, tongue: true },
  DD: { open: 0.25, wide: 0.55, round: 0.0, teeth: true },
  kk: { open: 0.32, wide: 0.5, round: 0.0 },
  CH: { open: 0.2, wide: 0.36, round: 0.6, teeth: true },
  SS: { open: 0.12, wide: 0.66, round: 0.0, teeth: true },
  nn: { open: 0.18, wide: 0.55, round: 0.0, tongue: true },
  RR: { open: 0.24, wide: 0.4, round: 0.5 },
  aa: { open: 0.9, wide: 0.6, round: 0.0 },
  E: { open: 0.5, wide: 0.72, round: 0.0 },
  ih: { open: 0.35, wide: 0.7, round: 0.0 },
  oh: { open: 0.62, wide: 0.36, round: 0.8 },
  ou: { open: 0.3, wide: 0.24, round: 1.0 },
};

export const VISEMES = Object.keys(SHAPES);

/** The viseme at `sample` of an utterance, from its `marks` messages ("sil" outside). */
export function visemeAt(marks, sample) {
  for (let m = marks.length - 1; m >= 0; m--) {
    const track = marks[m].visemes ?? [];
    if (!track.length || sample < track[0].start) continue;
    let lo = 0;
    let hi = track.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (track[mid].start <= sample) lo = mid;
      else hi = mid - 1;
    }
    return sample < track[lo].end ? track[lo].v : "sil";
  }
  return "sil";
}

export class Mouth {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.target = SHAPES.sil;
    this.shape = { ...SHAPES.sil };
    this.viseme = "sil";
    this.changes = 0;
  }

  /** Move toward `viseme`'s shape (unknown names close the mouth). */
  set(viseme) {
    if (viseme !== this.viseme) this.changes++;
    this.viseme = viseme;
    this.target = SHAPES[viseme] ?? SHAPES.sil;
    this.canvas.dataset.viseme = viseme;
  }

  /** One animation frame: ease toward the target and draw. */
  draw() {
    const s = this.shape;
    for (const k of ["open", "wide", "round"]) s[k] += (this.target[k] - s[k]) * 0.45;
    const { ctx, canvas } = this;
    const w = canvas.width;
    const h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const cx = w / 2;
    const cy = h / 2;
    const halfW = (w * 0.18) + (w * 0.22 * s.wide) - (w * 0.08 * s.round);
    const halfH = 2 + (h * 0.3 * s.open);
    // Lips.
    ctx.fillStyle = "#b5485d";
    ctx.beginPath();
    ctx.ellipse(cx, cy, halfW + 8, halfH + 8, 0, 0, Math.PI * 2);
    ctx.fill();
    // Mouth opening.
    ctx.fillStyle = "#3a0d16";
    ctx.beginPath();
    ctx.ellipse(cx, cy, halfW, halfH, 0, 0, Math.PI * 2);
    ctx.fill();
    if (this.target.teeth && halfH > 4) {
      ctx.fillStyle = "#f4f1ea";
      ctx.fillRect(cx - halfW * 0.6, cy - halfH, halfW * 1.2, Math.min(halfH * 0.5, 10));
    }
    if (this.target.tongue && halfH > 4) {
      ctx.fillStyle = "#d9707f";
      ctx.beginPath();
      ctx.ellipse(cx, cy + halfH * 0.5, halfW * 0.5, halfH * 0.45, 0, 0, Math.PI * 2);
      ctx.fill();
    }
  }
}
