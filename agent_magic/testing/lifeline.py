"""A server process that ends by itself when the process that started it dies.

A test run killed with SIGKILL runs no fixture finalizer and no ``atexit``, so a server it
started (llama.cpp's, a scripted one) would live on, holding a port and a core. Here:

* :func:`tie_to` - in the server's own process: end it when ``parent`` is gone;
* :func:`command` - the argv that runs ``python -m MODULE ARGS`` tied to this process;
* ``python lifeline.py --parent PID [--death-signal] -m MODULE ARGS...`` - that wrapper.

Two watches, either one enough: on Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (the kernel
signals at once), and everywhere a daemon thread that sees ``os.getppid()`` change (the
orphan is re-parented) within half a second. Once the parent is gone the process gets
SIGTERM (a server shuts down cleanly) and, should it still run 5 s later, ``os._exit``.

The wrapper runs the module in its own process (``runpy``), not as a child, so the PID the
caller holds is the server's. It is stdlib only and runs by path in any Python, such as
the llama.cpp venv, which has no agent_magic installed. The death signal is set in the
child itself rather than by ``preexec_fn``, which is not safe in a threaded parent; it
belongs to the *thread* that started the process, so :func:`command` asks for it only on
the main thread (a server started from a worker thread relies on the watch thread).
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Sequence

#: Seconds between two looks at the parent PID, and the grace after SIGTERM.
POLL = 0.5
GRACE = 5.0
_PR_SET_PDEATHSIG = 1


def _set_death_signal() -> bool:
    """Ask Linux to send SIGTERM when the parent thread ends; False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _end() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE)
    os._exit(1)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL)
    _end()


def tie_to(parent: int, *, death_signal: bool = False) -> None:
    """End this process once ``parent`` (the PID that started it) is gone.

    ``death_signal`` adds Linux's parent-death signal; give it only when ``parent`` started
    this process from its main thread (see the module's docstring).
    """
    if death_signal:
        _set_death_signal()
    if os.getppid() != parent:  # gone before we could watch: a race the signal cannot see
        _end()
    threading.Thread(target=_watch, args=(parent,), name="lifeline", daemon=True).start()


def command(python: str, module: str, *args: str) -> list[str]:
    """The argv that runs ``python -m module args`` tied to the calling process."""
    cmd = [python, os.path.abspath(__file__), "--parent", str(os.getpid())]
    if threading.current_thread() is threading.main_thread():
        cmd.append("--death-signal")
    return [*cmd, "-m", module, *args]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after ``-m MODULE`` is the module's own (argparse would take its options).
    at = argv.index("-m") if "-m" in argv[:-1] else len(argv)
    parser = argparse.ArgumentParser(
        prog="lifeline.py",
        usage="lifeline.py --parent PID [--death-signal] -m MODULE [ARGS...]",
        description="Run python -m MODULE ARGS, ended when the process PID ends.",
    )
    parser.add_argument("--parent", type=int, required=True, metavar="PID")
    parser.add_argument("--death-signal", action="store_true", help="also Linux's PDEATHSIG")
    options = parser.parse_args(argv[:at])
    if at == len(argv):
        parser.error("-m MODULE is required")
    module, args = argv[at + 1], argv[at + 2 :]
    tie_to(options.parent, death_signal=options.death_signal)
    # As ``python -m`` would have it: the working directory first on the path, not this
    # file's folder (whose module names could shadow the server's imports).
    sys.path[0] = ""
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
