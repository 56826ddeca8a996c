"""What a user of the ``voxlive`` command sees: help, settings, and one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import typing
from pathlib import Path

import pytest

import voxlive.cli.emotions
import voxlive.cli.serve
from voxlive.cli.parser import build_parser, main
from voxlive.server.config import Config, ConfigError, env_name, flag_name, parse_setting

from ..fakes import FakeEngine

COMMANDS = [["serve"], ["say"], ["emotions"], ["client"], ["bench"]]
COMMANDS += [["bench", t] for t in ("engine", "emotions", "idle", "server")]


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*argv, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


CHOICES = {
    "voices": "en",
    "voice": "zh",
    "trusted_proxies": "10.0.0.0/8",
    "allowed_origins": "https://example.com",
    "require_consent": "true",
}
"""Settings whose strings name something, and a valid value other than the default."""


NEEDS: dict[str, list[str]] = {
    "role": ["--redis", "redis://r:6379/0"],
    "workers": ["--role", "worker", "--redis", "redis://r:6379/0"],
}
"""Other flags a setting's sample value is valid with only (a worker needs Redis)."""


def sample(name: str) -> str:
    """A valid value for setting ``name`` other than its default, as typed."""
    if name in CHOICES:
        return CHOICES[name]
    kind = typing.get_type_hints(Config)[name]
    if typing.get_origin(kind) is typing.Literal:
        return typing.get_args(kind)[-1]
    default = getattr(Config(), name)
    if isinstance(default, bool):
        return str(not default)
    if isinstance(default, int):
        return str(default + 1)
    if isinstance(default, float):
        return str(default + 0.5)
    return f"{name}-value"


def test_top_level_help_is_for_users(capsys) -> None:
    text = help_of(capsys)
    assert "real-time text-to-speech" in text
    assert "examples:" in text and "voxlive serve --port 8765" in text
    assert "dispatch" not in text and "__main__" not in text


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_command_says_what_it_does_with_an_example(capsys, argv) -> None:
    text = help_of(capsys, *argv)
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n")[0]
    assert len(description) > 40 and not description.startswith(("positional", "options"))
    examples = text.split("examples:\n", 1)[1]
    assert examples.lstrip().startswith(("voxlive ", "VOXLIVE_"))


def test_defaults_are_shown(capsys) -> None:
    assert "(default: 8)" in help_of(capsys, "say")  # --batch
    assert "(default: ws://127.0.0.1:8765)" in help_of(capsys, "client")  # --url
    assert "(default: None)" not in help_of(capsys, "client")


def test_every_setting_is_a_flag_and_a_variable_of_the_same_name_with_help(capsys) -> None:
    text = help_of(capsys, "serve")
    for f in Config.settings():
        assert len(f.metadata["doc"]) > 10, f.name
        flag, variable = flag_name(f.name), env_name(f.name)
        assert flag == "--" + f.name.replace("_", "-") and variable == "VOXLIVE_" + f.name.upper()
        assert f"  {flag} " in text and variable in text, f.name
        shown = "unset" if f.default is None else str(f.default)
        assert f"(default: {shown}; env {variable})" in " ".join(text.split()), f.name
        value = sample(f.name)
        typed = parse_setting(f.name, value)
        needs = NEEDS.get(f.name, [])
        from_env = Config.from_args(build_parser().parse_args(["serve", *needs]), {variable: value})
        assert getattr(from_env, f.name) == typed, f.name
        args = build_parser().parse_args(["serve", *needs, flag, value])
        assert getattr(Config.from_args(args, {}), f.name) == typed, f.name


def test_a_flag_wins_over_its_variable() -> None:
    args = build_parser().parse_args(["serve", "--max-queued-items", "7", "--port", "9001"])
    env = {"VOXLIVE_MAX_QUEUED_ITEMS": "99", "VOXLIVE_HOST": "0.0.0.0"}
    config = Config.from_args(args, env)
    assert (config.max_queued_items, config.port, config.host) == (7, 9001, "0.0.0.0")


def test_redis_keeps_its_short_flag_and_its_variable() -> None:
    for argv in (["--redis", "redis://a:1/0"], ["--redis-url", "redis://a:1/0"]):
        args = build_parser().parse_args(["serve", *argv])
        assert Config.from_args(args, {}).redis_url == "redis://a:1/0"
    args = build_parser().parse_args(["serve"])
    assert Config.from_args(args, {"VOXLIVE_REDIS_URL": "redis://b:2/1"}).redis_url == (
        "redis://b:2/1"
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--port", "abc"], {}, "--port: 'abc' is not a whole number"),
        ([], {"VOXLIVE_PORT": "abc"}, "VOXLIVE_PORT: 'abc' is not a whole number"),
        (["--max-queued-items", "0"], {}, "max_queued_items must be ≥ 1, got 0 (from --max-q"),
        ([], {"VOXLIVE_MAX_INFLIGHT": "0"}, "(from VOXLIVE_MAX_INFLIGHT)"),
        (["--precision", "fp8"], {}, "--precision: 'fp8' is not one of float32, bfloat16"),
        (["--graceful-shutdown-s", "nan"], {}, "is not a finite number"),
        (["--port", "70000"], {"VOXLIVE_PORT": "abc"}, "VOXLIVE_PORT"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(capsys, monkeypatch, argv, env, message) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("voxlive: error: ") and message in err


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        Config(first_chunk_frames=0)
    assert caught.value.name == "first_chunk_frames"


def listening_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def test_a_busy_port_is_one_line_and_exit_1_before_the_voice_loads(capsys, monkeypatch) -> None:
    def no_app(config: Config) -> None:
        raise AssertionError("the voice was loaded")

    monkeypatch.setattr(voxlive.cli.serve, "App", no_app)
    s, port = listening_port()
    with s:
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"voxlive: error: port {port} is in use on 127.0.0.1 (another server running? "
        "pick another with --port or VOXLIVE_PORT)\n"
    )


class BindFails:
    """An App whose port is taken between the check and the bind (a race)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = FakeEngine()

    async def serve(self, stop: asyncio.Event, ready: object, *, engine_thread: bool) -> None:
        raise OSError(errno.EADDRINUSE, "error while attempting to bind: address already in use")


def test_a_port_taken_at_bind_time_is_one_line_too(capsys, monkeypatch) -> None:
    monkeypatch.setattr(voxlive.cli.serve, "App", BindFails)
    monkeypatch.setattr(voxlive.cli.serve, "check_port_free", lambda host, port: None)
    assert main(["serve", "--port", "8765"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "voxlive: error: port 8765 is in use on 127.0.0.1 (another server running? "
        "pick another with --port or VOXLIVE_PORT)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["say", "-f", "{missing}", "-o", "out"], "-f/--file {missing}: no such file"),
        (["say", "Hi.", "-o", "o.wav", "--voice", "{missing}"], "--voice {missing}: no such file"),
        (["say", "Hi", "-o", "o", "--voice", "{dir}"], "--voice {dir}: is a directory, not a file"),
        (["client", "Hi.", "-o", "o", "--voice", "{missing}"], "--voice {missing}: no such file"),
        (["bench", "server", "--texts", "{missing}"], "--texts {missing}: no such file"),
    ],
)
def test_a_missing_input_file_is_one_line_and_exit_2(tmp_path, capsys, argv, message) -> None:
    where = {"missing": str(tmp_path / "missing.txt"), "dir": str(tmp_path)}
    assert main([a.format(**where) for a in argv]) == 2
    assert capsys.readouterr().err == f"voxlive: error: {message.format(**where)}\n"


def crash(args: argparse.Namespace) -> int:
    raise RuntimeError("CUDA error: something deep inside torch")


def test_an_unexpected_error_is_one_line_and_its_traceback_only_under_v(
    capsys, monkeypatch
) -> None:
    monkeypatch.setattr(voxlive.cli.emotions, "run_emotions", crash)
    assert main(["emotions"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "voxlive: error: unexpected RuntimeError: CUDA error: something deep inside torch "
        "(run with -v for the traceback)\n"
    )
    for argv in (["-v", "emotions"], ["emotions", "-v"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("voxlive: error: unexpected RuntimeError: CUDA error")
        assert "Traceback (most recent call last)" in err and "in crash" in err


def test_usage_errors_stay_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["say", "--no-such-flag"])
    assert stopped.value.code == 2
    assert main(["say", "Hi."]) == 2  # no -o
    assert "-o/--output is required" in capsys.readouterr().err


def test_the_reference_clip_is_voice_in_say_and_client(capsys) -> None:
    parse = build_parser().parse_args
    assert parse(["say", "Hi.", "--voice", "r.wav"]).voice == Path("r.wav")
    assert parse(["client", "Hi.", "-o", "o.wav", "--voice", "r.wav"]).voice_file == Path("r.wav")
    # The client's earlier name still works, and is not advertised.
    old = parse(["client", "Hi.", "-o", "o.wav", "--voice-file", "r.wav"])
    assert old.voice_file == Path("r.wav")
    assert "--voice-file" not in help_of(capsys, "client")
    assert "--voice FILE" in help_of(capsys, "client")


def test_a_zero_grace_period_given_as_an_int_is_valid() -> None:
    assert Config(graceful_shutdown_s=0).graceful_shutdown_s == 0
