"""The HTTP API's OpenAPI 3.1 document (``GET /openapi.json``), with this server's limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .speech import DEFAULT_RATE, FORMATS, MODELS, OPENAI_VOICES

if TYPE_CHECKING:
    from .app import App

__all__ = ["openapi_document"]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(app: App) -> dict[str, Any]:
    """The document, for ``app``'s voices and limits."""
    config = app.config
    builtin = [v for v in app.capabilities.voices]
    speech_request = {
        "type": "object",
        "required": ["model", "input", "voice"],
        "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "enum": list(MODELS)},
            "input": {"type": "string", "minLength": 1, "maxLength": config.max_text_chars},
            "voice": {
                "type": "string",
                "description": "A built-in voice ("
                + ", ".join(builtin)
                + "), an OpenAI voice name (the input's language picks the built-in "
                "voice), or a registered voice's name.",
                "examples": [*builtin, *OPENAI_VOICES[:2]],
            },
            "response_format": {"type": "string", "enum": list(FORMATS), "default": "mp3"},
            "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "default": 1.0},
            "instructions": {
                "type": "string",
                "description": "Free text; its first emotion word picks the emotion "
                "(README: HTTP speech API).",
            },
            "stream_format": {"type": "string", "enum": ["audio"]},
            "emotion": {"type": "string"},
            "intensity": {"type": "number", "minimum": 0, "maximum": 1},
            "pitch": {"type": "number", "minimum": -12, "maximum": 12, "default": 0},
            "volume": {"type": "number", "minimum": -30, "maximum": 12, "default": 0},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
            "lang": {"type": "string"},
            "sample_rate": {
                "type": "integer",
                "minimum": 8000,
                "maximum": 48000,
                "default": DEFAULT_RATE,
            },
        },
    }
    audio = {
        media: {"schema": {"type": "string", "format": "binary"}} for media in FORMATS.values()
    }
    auth: list[dict[str, list[str]]] = [{"bearer": []}] if app.keys.required else []
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "voxlive HTTP API",
            "version": "1.7",
            "description": "Speech compatible with OpenAI's audio API, and watermark "
            "detection. The WebSocket protocol (protocol/SPEC.md) is on the same port.",
        },
        "paths": {
            "/v1/audio/speech": {
                "post": {
                    "operationId": "createSpeech",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": speech_request}},
                    },
                    "responses": {
                        "200": {
                            "description": "The audio, streamed as it is made.",
                            "content": audio,
                        },
                        "400": _error("A field is missing, of the wrong type or out of range."),
                        "401": _error("No API key, or not one of the server's."),
                        "413": _error("The input is longer than the server takes."),
                        "429": _error("Too many requests; see Retry-After."),
                        "503": _error("Busy or shutting down; see Retry-After."),
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "responses": {"200": {"description": "The model names `model` takes."}},
                }
            },
            "/v1/audio/voices": {
                "get": {
                    "operationId": "listVoices",
                    "responses": {"200": {"description": "Built-in voices and OpenAI aliases."}},
                }
            },
            "/v1/detect": {
                "post": {
                    "operationId": "detectWatermark",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "audio/*": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Whether the audio carries voxlive's watermark.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Detection"}
                                }
                            },
                        },
                        "400": _error("No body."),
                        "401": _error("No API key, or not one of the server's."),
                        "413": _error("Over max_detect_bytes."),
                        "422": _error("Not audio the server can read."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": "string"},
                            },
                        }
                    },
                },
                "Detection": {
                    "type": "object",
                    "required": ["marked", "score", "threshold", "seconds", "sample_rate", "model"],
                    "properties": {
                        "marked": {"type": "boolean"},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                        "threshold": {"type": "number"},
                        "seconds": {"type": "number"},
                        "sample_rate": {"type": "integer"},
                        "model": {"type": "string"},
                    },
                },
            },
        },
    }
