"""Emotions through a real server: mixed in one batch, streamed, with registered voices.

What a listener would notice is measured on the received audio (``engine.measure``):
duration, pitch, loudness; seams are looked for as clicks at frame joins.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxlive.engine.expression import PAUSE_PHONEMES, Expression, render
from voxlive.engine.measure import measure
from voxlive.engine.voice import SynthesisParams
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    Append,
    AudioFrame,
    Done,
    End,
    Error,
    Speak,
    SpeakOptions,
    Started,
)
from voxlive.protocol.types import UtteranceId

from .harness import collect, open_session, run, run_server

RATE = 22050
TEXT = "Thank you so much for the twenty gifted subscriptions, you are amazing."


def pcm_of(frames: list[AudioFrame]) -> np.ndarray:
    return np.frombuffer(b"".join(f.pcm for f in frames), "<i2").astype(np.float32) / 32768


def n_phones(voice, text: str) -> int:
    result = voice.frontend.process(text)
    return sum(
        1 for s in result.sentences for p in s.phonemes if p not in PAUSE_PHONEMES and p != " "
    )


async def speak_all(app, items: dict[str, SpeakOptions], text: str = TEXT):
    """Send every utterance at once on one session (they share engine batches)."""
    ws = await open_session(app)
    for uid, options in items.items():
        await ws.send(encode_client(Speak(UtteranceId(uid), text, options)))
    messages, frames, done = await collect(ws, set(items), timeout=120)
    await ws.close()
    started = {m.id: m for m in messages if isinstance(m, Started)}
    errors = [m for m in messages if isinstance(m, Error)]
    audio = {uid: pcm_of(frames.get(started[uid].stream, [])) for uid in started}
    return audio, done, started, errors


@pytest.mark.slow
def test_emotions_mixed_in_one_batch_move_rate_pitch_and_loudness(server_voice):
    items = {
        "plain": SpeakOptions(seed=5),
        "happy": SpeakOptions(emotion="happy", intensity=1.0, seed=5),
        "sad": SpeakOptions(emotion="难过", intensity=1.0, seed=5),  # a Chinese synonym
        "angry": SpeakOptions(emotion="Furious", intensity=1.0, seed=5),
        "quiet": SpeakOptions(volume=-6.0, seed=5),
        "higher": SpeakOptions(pitch=4.0, seed=5),
    }

    async def main():
        async with run_server(server_voice) as app:
            return await speak_all(app, items)

    audio, done, started, errors = run(main())
    assert not errors and {d.status for d in done.values()} == {"completed"}
    assert started["sad"].emotion == "sad" and started["angry"].emotion == "angry"
    assert started["happy"].intensity == 1.0 and started["plain"].emotion == "neutral"
    # No emotion asked: no intensity applies, and started reports none (SPEC.md §5.2).
    assert started["plain"].intensity is None

    # Neutral with no pitch/volume is the engine's own output for that seed, exactly.
    (engine_plain,) = server_voice.synthesize_texts([TEXT], SynthesisParams(seed=5))
    pcm16 = np.clip(np.round(engine_plain * 32767), -32768, 32767) / 32768
    assert len(audio["plain"]) == len(engine_plain)
    assert np.max(np.abs(audio["plain"] - pcm16)) <= 4 / 32768  # batching rounding only

    n = n_phones(server_voice, TEXT)
    m = {k: measure(a, RATE, n) for k, a in audio.items()}
    assert len(audio["sad"]) > len(audio["plain"]) > len(audio["happy"])
    # One sentence: the pitch tracker's noise is ~0.5 st, so compare the two ends.
    assert m["sad"].f0_mean_st < m["plain"].f0_mean_st - 1.0
    assert m["happy"].f0_mean_st > m["sad"].f0_mean_st + 2.0
    assert m["angry"].rms_db > m["plain"].rms_db + 2 > m["sad"].rms_db + 4
    assert m["higher"].f0_mean_st - m["plain"].f0_mean_st > 2.5
    # Volume alone needs no WORLD pass: the same samples, 6 dB down.
    assert len(audio["quiet"]) == len(audio["plain"])
    assert abs((m["quiet"].rms_db - m["plain"].rms_db) + 6.0) < 0.2


@pytest.mark.tiny_voice
def test_an_unknown_emotion_is_refused_with_the_supported_list(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            bad = Speak(UtteranceId("u"), "Hi.", SpeakOptions(emotion="bored"))
            await ws.send(encode_client(bad))
            async with asyncio.timeout(30):
                while not isinstance(reply := decode_server(await ws.recv()), Error):
                    pass
            # Speed 4 is the limit; excited speeds up further: spoken at the limit, and
            # done.warnings says so (SPEC.md §4.4.1).
            fast = SpeakOptions(emotion="excited", intensity=1.0, speed=4.0)
            await ws.send(encode_client(Speak(UtteranceId("w"), "Hi.", fast)))
            # The session stays usable.
            await ws.send(encode_client(Speak(UtteranceId("v"), "Hi.", SpeakOptions())))
            messages, _, done = await collect(ws, {"v", "w"})
            return reply, messages, done

    error, messages, done = run(main())
    assert error.code == "unsupported" and error.id == "u"
    assert "happy" in error.message and "fearful" in error.message
    assert not [m for m in messages if isinstance(m, Error)]
    assert done["w"].status == done["v"].status == "completed"
    (limited,) = done["w"].warnings
    assert limited.startswith("speaking rate limited to 4×") and "speed 4" in limited


@pytest.mark.slow
def test_streamed_emotional_text_has_no_clicks_at_the_seams(server_voice):
    """Text arriving in pieces, spoken excited: chunk joins must not click."""
    pieces = ["Welcome back to the stream, ", "everyone! Today we are going ", "to try the ",
              "hardest level in the whole game. ", "Wish me luck."]  # fmt: skip
    options = SpeakOptions(emotion="excited", intensity=1.0, seed=2)

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            uid = UtteranceId("s")
            for i, piece in enumerate(pieces):
                await ws.send(encode_client(Append(uid, piece, options if i == 0 else None)))
                await asyncio.sleep(0.05)
            await ws.send(encode_client(End(uid)))
            messages, frames, done = await collect(ws, {"s"}, timeout=120)
            (started,) = [m for m in messages if isinstance(m, Started)]
            return (
                pcm_of(frames[started.stream]),
                done["s"],
                app.engine.engine.center_hz,
            )  # inside the marking wrapper

    streamed, done, center_hz = run(main())
    assert done.status == "completed"
    text = "".join(pieces)
    result = server_voice.frontend.process(text)
    expr = Expression.create(emotion="excited", intensity=1.0, center_hz=center_hz)
    (whole,) = render(server_voice, [result], [expr], [SynthesisParams(seed=2)])
    # The same words, the same prosody: length within the sentence split's rounding,
    # pitch and loudness as the whole-text rendering.
    n = n_phones(server_voice, text)
    a, b = measure(streamed, RATE, n), measure(whole, RATE, n)
    assert abs(a.f0_mean_st - b.f0_mean_st) < 1.0 and abs(a.rms_db - b.rms_db) < 1.5
    # Clicks: the largest sample-to-sample jump is not larger than in the whole rendering.
    assert np.max(np.abs(np.diff(streamed))) <= 1.5 * np.max(np.abs(np.diff(whole)))


@pytest.mark.slow
def test_an_emotion_in_a_registered_voice_moves_that_voice(server_voice):
    from voxlive.engine.transform import VoiceTransform
    from voxlive.engine.world import analyze, apply, synthesize

    from .test_voices import SENTENCES, encode, register

    speech = server_voice.synthesize_texts(SENTENCES, SynthesisParams(seed=1))
    pause = np.zeros(RATE // 2, np.float32)
    clip = np.concatenate([pause] + [x for s in speech for x in (s, pause)])
    other = synthesize(apply(analyze(clip, RATE), VoiceTransform(f0_shift_st=4.0)))

    async def speak(ws, uid, options):
        await ws.send(encode_client(Speak(UtteranceId(uid), TEXT, options)))
        _, frames, done = await collect(ws, {uid}, timeout=120)
        return pcm_of(next(iter(frames.values()))), done[uid]

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            ready = await register(ws, "r", encode(other, subtype="PCM_16"))
            v = ready.voice
            plain = await speak(ws, "p", SpeakOptions(voice=v, seed=4))
            sad = await speak(ws, "s", SpeakOptions(voice=v, emotion="sad", intensity=1.0, seed=4))
            return plain, sad

    (plain, pd), (sad, sd) = run(main())
    assert pd.status == sd.status == "completed"
    n = n_phones(server_voice, TEXT)
    mp, ms = measure(plain, RATE, n), measure(sad, RATE, n)
    assert len(sad) > 1.1 * len(plain)
    assert ms.f0_mean_st < mp.f0_mean_st - 1.0 and ms.rms_db < mp.rms_db - 2.0
    assert isinstance(pd, Done)
