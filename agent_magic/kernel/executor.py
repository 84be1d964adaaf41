"""Running approved code in the live IPython namespace, and digesting what it did.

:class:`IPythonExecutor` implements the :class:`~agent_magic.conversation.Executor`
seam. Python runs through ``shell.run_cell`` so variables persist, ``display()``
and inline plots land in the ``%%agent`` cell, and magics work; the user sees
everything as usual while :class:`~.capture.StepCapture` keeps a bounded digest
for the model and the outputs for the record. A step is named ``<agent step N>`` in
its tracebacks. A step running longer than ``step_timeout`` is interrupted as the
kernel's interrupt button would (:mod:`.signals`); ``exit()`` in a step never ends the
session. Shell blocks run in a subprocess in their own process group, killed whole
on timeout or interrupt.

What the model is told is worded in :func:`agent_magic.conversation.rules.step_report`, from
the :class:`~agent_magic.conversation.StepOutcome` fields filled here.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..codeblocks import SHELL, CodeBlock
from ..conversation import StepError, StepOutcome
from ..guard import Undo, touches
from ..guard.touches import parsed
from ..text import escape_surrogates, strip_ansi
from ..text import head_tail as cap
from . import ipython
from .capture import StepCapture
from .signals import StepSignals, drop_handler_frame

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..secrets import Redactor

DEFAULT_STEP_TIMEOUT = 600.0  # seconds; 0 or None for no limit

# Step names are unique in the process: linecache keeps each step's source under its name.
_numbers = itertools.count(1)
_repeats: dict[str, int] = {}  # how many times each step number was named


def step_name(step: int | None = None) -> str:
    """``<agent step N>``: N the conversation's step when given, else a running count; a
    number named before (a later conversation's step N) gets ``<agent step N.2>``, ...
    (a counter per number: naming stays constant-time however many conversations ran)."""
    base = f"agent step {step if step is not None else next(_numbers)}"
    seen = _repeats[base] = _repeats.get(base, 0) + 1
    return f"<{base}>" if seen == 1 else f"<{base}.{seen}>"


class IPythonExecutor:
    """Runs blocks in ``shell``'s namespace and reports bounded digests."""

    def __init__(
        self,
        shell: InteractiveShell,
        *,
        max_output_chars: int = 8000,
        max_display_chars: int = 2_000_000,
        shell_timeout: float = 60.0,
        step_timeout: float | None = None,
        describe_changes: bool = True,
        collect_images: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        self.shell = shell
        self.redactor = redactor  # None: nothing hidden (the session always gives one)
        self.last_undo: Undo | None = None  # what undoes the last step that ran
        self._refreshed = False  # the redactor was refreshed after this executor's last step
        self._left: Any = None  # the fingerprints this executor's last step left
        self.max_output_chars = max_output_chars
        self.max_display_chars = max_display_chars
        self.shell_timeout = shell_timeout
        # None: the default (read now, so a session can change it); 0: no limit.
        self.step_timeout = DEFAULT_STEP_TIMEOUT if step_timeout is None else step_timeout
        self.describe_changes = describe_changes
        self.collect_images = collect_images

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        if block.language == SHELL:
            return self._run_shell(block.code)
        return self._run_python(block.code, step_name(step))

    # -- python ----------------------------------------------------------------------

    def _run_python(self, code: str, name: str) -> StepOutcome:
        shell = self.shell
        before = self._snapshot()
        self._refresh(before=True)
        capture = StepCapture(
            shell,
            max_output_chars=self.max_output_chars,
            max_display_chars=self.max_display_chars,
            collect_images=self.collect_images,
            name=name,
            redactor=self.redactor,
        )
        signals = StepSignals(self.step_timeout)
        result: Any = None
        escaped: BaseException | None = None
        transform = ipython.step_transform(shell)  # IPython syntax as Python, for touches
        undo = Undo.before(shell.user_ns, code, found=touches(code, transform=transform))
        read = parsed(code, transform) if transform is not None else None
        with _quiet_exit_warning():
            try:
                with capture, signals, ipython.Patches() as patches:
                    if read is not None:  # transformed and parsed once, for the guard and the run
                        ipython.hook_transform(shell, patches, code, read[0])
                        ipython.hook_parsed(shell, patches, *read)
                    ipython.hook_async_check(shell, patches)
                    result = shell.run_cell(code, store_history=False, silent=False)
            except KeyboardInterrupt as error:  # landed between the step and its end
                escaped = error
        self.last_undo = undo.after(shell.user_ns)
        error = escaped
        if result is not None:
            error = result.error_before_exec or result.error_in_exec or escaped
        timed_out = self.step_timeout if signals.timed_out else None
        if signals.available:
            interrupted = signals.interrupted and isinstance(error, KeyboardInterrupt)
        else:
            interrupted = isinstance(error, KeyboardInterrupt) and not timed_out
        exited = capture.exited
        if isinstance(error, SystemExit):
            exited = True
            if error.code in (None, 0):
                error = None
        step_error = self._error(error) if error is not None else None
        if step_error is not None:
            step_error = _hidden_error(step_error, capture)
            capture.add_error(step_error.type, step_error.message, step_error.text)
        self._note(timed_out, exited)

        parts: list[str] = []
        if capture.printed(0):
            parts.append("stdout:\n" + capture.stdout.rstrip("\n"))
        if capture.printed(1):
            parts.append("stderr:\n" + capture.stderr.rstrip("\n"))
        if capture.displayed:
            parts.append("displayed:\n" + "\n".join(capture.displayed))
        if result is not None and result.result is not None:
            value = _short_repr(result.result, self.max_output_chars // 2)
            parts.append("result:\n" + capture.redact(value, count=False))  # counted as shown
        outcome = StepOutcome(
            ok=step_error is None and timed_out is None,
            digest=cap("\n".join(parts), self.max_output_chars),
            error=step_error,
            changes=escape_surrogates(self._changes(before)),
            images=tuple(capture.images),
            outputs=tuple(capture.outputs),
            interrupted=interrupted,
            timed_out=timed_out,
            exited=exited,
        )
        return self._hide(outcome, capture)

    def _refresh(self, *, before: bool = False) -> bool:
        """Bring the redactor up to date with the namespace; True when its secrets changed.

        Before a step only when this executor has not refreshed it since the last step
        ended: between two steps of a cell only the loop runs, which binds no names.
        """
        if self.redactor is None or (before and self._refreshed):
            return False
        self._refreshed = True
        return self.redactor.refresh(self.shell.user_ns)

    def _hide(self, outcome: StepOutcome, capture: StepCapture) -> StepOutcome:
        """The outcome with secrets hidden where the capture did not see them: the error
        and the change list, and, when the step itself bound new secrets, everything."""
        if self.redactor is None:
            return outcome
        changes = capture.redact(outcome.changes, count=False)
        if not self._refresh():
            return replace(outcome, changes=changes, hidden=capture.hidden)
        # The step bound a new secret: it was shown as it ran, but it goes no further.
        error = outcome.error
        return replace(
            outcome,
            digest=capture.redact(outcome.digest),
            outputs=tuple(self.redactor.redact_json(list(outcome.outputs))),
            error=None if error is None else _hidden_error(error, capture),
            changes=capture.redact(changes, count=False),
            hidden=capture.hidden,
        )

    def _note(self, timed_out: float | None, exited: bool) -> None:
        """One line in the cell for what the user would otherwise wonder about."""
        if timed_out is not None:
            sys.stdout.write(
                f"[agent_magic: the step was stopped after {timed_out:g} s "
                "(the step time limit, AgentMagics.step_timeout); the session is kept]\n"
            )
        elif exited:
            sys.stdout.write("[agent_magic: the step called exit(); the session keeps running]\n")

    def _error(self, error: BaseException) -> StepError:
        drop_handler_frame(error)
        return StepError(
            type=type(error).__name__,
            message=_message(error),
            frames=_frames(error),
            text=self._traceback(error),
        )

    def _traceback(self, error: BaseException) -> str:
        if isinstance(error, SystemExit):
            return f"SystemExit: {error.code} (sys.exit() was called; the session keeps running)"
        if isinstance(error, SyntaxError):
            # The file, the line and its caret: IPython's traceback of a step that does
            # not compile says only "SyntaxError: invalid syntax (<agent step 1>, line 1)".
            return escape_surrogates("".join(_format_exception_only(error)).rstrip())
        try:
            lines = self.shell.InteractiveTB.structured_traceback(
                type(error), error, error.__traceback__, tb_offset=1
            )
            text = strip_ansi("\n".join(lines))
        except Exception:  # formatting must never fail a step
            text = "".join(_format_exception_only(error))
        return escape_surrogates(cap(text.strip("\n"), self.max_output_chars // 2))

    def _snapshot(self) -> Any:
        """The namespace before a step (held for the step's length only), with the
        fingerprints the last step left when this executor ran one, since between two
        steps of a cell only the loop runs (as for :meth:`_refresh`)."""
        if not self.describe_changes:
            return None
        marks, self._left = self._left, None
        from .. import context

        return context.step_start(self.shell.user_ns, marks)

    def _changes(self, before: Any) -> str:
        if before is None:
            return ""
        from .. import context

        ns, hidden = self.shell.user_ns, self.shell.user_ns_hidden
        text, self._left = context.step_changes(before, ns, hidden=hidden)
        return text

    # -- shell -------------------------------------------------------------------------

    def _shell_limit(self) -> float | None:
        limits = [t for t in (self.shell_timeout, self.step_timeout) if t and t > 0]
        return min(limits) if limits else None

    def _run_shell(self, command: str) -> StepOutcome:
        program = shutil.which("bash") or "/bin/sh"
        limit = self._shell_limit()
        self._refresh(before=True)
        capture = StepCapture(
            self.shell,
            max_output_chars=self.max_output_chars,
            max_display_chars=self.max_display_chars,
            python=False,
            redactor=self.redactor,
        )
        interrupted = timed_out = False
        undo = Undo.before(self.shell.user_ns, "")  # a shell step binds no names; it says so
        with capture:
            process = subprocess.Popen(
                [program, "-c", command],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: a timeout ends its children
            )
            try:
                output, _ = process.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(process)
                output, _ = process.communicate()
            except KeyboardInterrupt:
                interrupted = True
                kill_group(process)
                output, _ = process.communicate()
            if output:
                sys.stdout.write(output if output.endswith("\n") else output + "\n")
            status = process.returncode
            if timed_out:
                note = f"timed out after {limit:g} s and was killed"
            elif interrupted:
                note = "interrupted"
            else:
                note = f"exit code {status}"
            if timed_out or interrupted:
                capture.muted = True
                sys.stdout.write(f"[{note}]\n")
                capture.muted = False
        self.last_undo = undo.after(self.shell.user_ns)
        text = capture.stdout.rstrip("\n")
        outcome = StepOutcome(
            ok=status == 0 and not timed_out and not interrupted,
            digest=f"{note}\noutput:\n{text}" if text else note,
            outputs=tuple(capture.outputs),
            interrupted=interrupted,
            timed_out=limit if timed_out else None,
        )
        return self._hide(outcome, capture)


def _hidden_error(error: StepError, capture: StepCapture) -> StepError:
    """``error`` with its secrets hidden (counted where the traceback was shown)."""
    message = capture.redact(error.message, count=False)
    text = capture.redact(error.text, count=False)
    if (message, text) == (error.message, error.text):
        return error
    return replace(error, message=message, text=text)


@contextmanager
def _quiet_exit_warning() -> Iterator[None]:
    """Drop the "To exit: use 'exit', ..." warning run_code gives after a SystemExit (the
    step's note says it), through ``warnings.showwarning``: a step's own warning filters
    stay as it set them."""
    show = warnings.showwarning

    def showwarning(message: Any, category: Any, *args: Any, **kwargs: Any) -> Any:
        if category is UserWarning and str(message).startswith("To exit: use"):
            return None
        return show(message, category, *args, **kwargs)

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        if warnings.showwarning is showwarning:  # unless the step set its own
            warnings.showwarning = show


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process's whole group (it leads its own session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):  # AttributeError: Windows
        process.kill()


def _short_repr(value: Any, limit: int) -> str:
    try:
        from IPython.lib.pretty import pretty

        text = pretty(value, max_seq_length=50)
    except Exception as error:
        text = f"<{type(value).__name__}: repr failed with {type(error).__name__}>"
    return escape_surrogates(cap(text, limit))


def _message(error: BaseException) -> str:
    try:
        return escape_surrogates(str(error))
    except Exception:  # a broken __str__ must not fail the step's report
        return f"<{type(error).__name__}: str() failed>"


def _frames(error: BaseException) -> tuple[tuple[str, int, str], ...]:
    """(filename, lineno, function) of the step's own frames, innermost last."""
    import traceback

    if isinstance(error, SyntaxError) and error.filename:
        return ((error.filename, error.lineno or 0, "<module>"),)
    tb = error.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # the first frame is IPython's run_code, not the step
    return tuple(
        (frame.filename, frame.lineno or 0, frame.name) for frame in traceback.extract_tb(tb)
    )


def _format_exception_only(error: BaseException) -> list[str]:
    import traceback

    return traceback.format_exception_only(type(error), error)
