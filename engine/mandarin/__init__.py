"""Mandarin voice: the Baker FastSpeech2 + MB-MelGAN model and its Chinese text front end."""
