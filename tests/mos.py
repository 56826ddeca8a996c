"""The speech-quality judge for tests (``voxlive/bench/mos.py``)."""

from voxlive.bench.mos import MIN_SECONDS, MOS_SAMPLE_RATE, load_mos, mos

__all__ = ["MIN_SECONDS", "MOS_SAMPLE_RATE", "load_mos", "mos"]
