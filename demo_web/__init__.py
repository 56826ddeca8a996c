"""The browser files ``voxlive serve`` serves on its port (package data, no code).

``index.html``/``app.js`` the demo page at ``/``; ``overlay.html``/``overlay.js`` the OBS
overlay at ``/overlay``; ``voxlive.js`` the JavaScript client; ``player.js`` and
``player-worklet.js`` the AudioWorklet playback; ``vendor/msgpack.min.js`` the
MessagePack community's ``@msgpack/msgpack`` 3.1.3 build (``vendor/LICENSE-msgpack``).
"""
