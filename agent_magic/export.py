"""A recorded conversation as a clean notebook, and the step outputs that go into it.

* :class:`OutputCapture` wraps an :class:`~agent_magic.conversation.Executor` and keeps
  what each step showed - printed text, displays (plots, tables), the value of the last
  expression and the error - as nbformat outputs, while everything still reaches the
  notebook as usual. The :class:`~agent_magic.transcript.Recorder` writes them into the
  transcript with the step.
* :func:`to_notebook` turns a conversation's transcript records into an nbformat
  notebook: the task and each assistant message as Markdown cells, each step that ran as
  a code cell holding the code that actually ran (after your edits) and its outputs, and
  the provenance (model, endpoint, usage, decisions) in cell metadata. It runs with a
  plain kernel: no extension, no key. :func:`write_notebook` validates and saves it.

IPython is only touched through the shell object passed in; nbformat is imported when
a notebook is built.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .codeblocks import PYTHON, SHELL, CodeBlock, inert_markdown, strip_code_blocks
from .conversation import Executor, StepOutcome
from .text import fence
from .transcript.records import error_from_record

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
MAX_STREAM_CHARS = 100_000  # per stream output kept in the transcript
MAX_DATA_CHARS = 2_000_000  # per display output kept in the transcript
_WIDGET = "application/vnd.jupyter.widget-view+json"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


class _Stream:
    """Stands in for sys.stdout/stderr: forwards everything, keeps a copy."""

    def __init__(self, real: Any, name: str, capture: OutputCapture) -> None:
        self._real = real
        self._name = name
        self._capture = capture

    def write(self, text: Any) -> int:
        text = text if isinstance(text, str) else str(text)
        if not self._capture.muted:
            self._capture.add_stream(self._name, text)
        return self._real.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class OutputCapture:
    """An Executor that runs ``inner`` and keeps each step's outputs for :meth:`take`."""

    def __init__(self, inner: Executor, shell: InteractiveShell) -> None:
        self.inner = inner
        self.shell = shell
        self.outputs: list[dict[str, Any]] = []
        self.muted = False
        self._error: BaseException | None = None
        self._display_ids: dict[str, int] = {}

    def take(self) -> list[dict[str, Any]]:
        outputs, self.outputs = self.outputs, []
        return outputs

    # -- collecting ------------------------------------------------------------------------

    def add_stream(self, name: str, text: str) -> None:
        if not text:
            return
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            if len(last["text"]) < MAX_STREAM_CHARS * 2:
                last["text"] += text
            return
        self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def add_data(
        self, kind: str, data: Mapping[str, Any], metadata: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        kept = {
            mime: value
            for mime, value in data.items()
            if mime != _WIDGET and len(str(value)) <= MAX_DATA_CHARS
        }
        if not kept:
            return None
        output: dict[str, Any] = {
            "output_type": kind,
            "data": kept,
            "metadata": dict(metadata or {}),
        }
        self.outputs.append(output)
        return output

    # -- running ---------------------------------------------------------------------------

    def run(self, block: CodeBlock) -> StepOutcome:
        self.outputs = []
        self._error = None
        shell = self.shell
        patches = _Patches()
        saved = sys.stdout, sys.stderr
        sys.stdout = _Stream(saved[0], "stdout", self)  # type: ignore[assignment]
        sys.stderr = _Stream(saved[1], "stderr", self)  # type: ignore[assignment]
        try:
            if block.language == PYTHON:
                self._hook(shell, patches)
            outcome = self.inner.run(block)
        finally:
            patches.undo()
            if block.language == PYTHON:
                shell.events.unregister("post_run_cell", self._post_run_cell)
            sys.stdout, sys.stderr = saved
        for output in self.outputs:
            if output["output_type"] == "stream":
                output["text"] = _clip(output["text"], MAX_STREAM_CHARS)
        if self._error is not None or (not outcome.ok and block.language == PYTHON):
            self.outputs.append(_error_output(self._error, outcome))
        return outcome

    def _hook(self, shell: Any, patches: _Patches) -> None:
        publisher = shell.display_pub
        publish = publisher.publish

        def capture_publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(data, Mapping):
                return publish(data, metadata, *args, **kwargs)
            self._published(data, metadata, kwargs)
            self.muted = True  # a terminal prints the display as text; it is kept as data
            try:
                return publish(data, metadata, *args, **kwargs)
            finally:
                self.muted = False

        patches.set(publisher, "publish", capture_publish)

        hook = shell.displayhook
        start, finish, write_data = (
            hook.start_displayhook,
            hook.finish_displayhook,
            hook.write_format_data,
        )

        def start_displayhook() -> Any:
            self.muted = True  # a terminal prints "Out[n]: ..."; it is kept as data instead
            return start()

        def finish_displayhook() -> Any:
            try:
                return finish()
            finally:
                self.muted = False

        def write_format_data(format_dict: Any, md_dict: Any = None) -> Any:
            if isinstance(format_dict, Mapping):
                output = self.add_data("execute_result", format_dict, md_dict)
                if output is not None:
                    output["execution_count"] = None
            return write_data(format_dict, md_dict)

        patches.set(hook, "start_displayhook", start_displayhook)
        patches.set(hook, "finish_displayhook", finish_displayhook)
        patches.set(hook, "write_format_data", write_format_data)
        for name in ("showtraceback", "showsyntaxerror"):
            patches.set(shell, name, self._muting(getattr(shell, name)))
        shell.events.register("post_run_cell", self._post_run_cell)

    def _muting(self, show: Any) -> Any:
        def muted(*args: Any, **kwargs: Any) -> Any:
            # The traceback becomes an error output; its printed copy is not kept.
            self.muted = True
            try:
                return show(*args, **kwargs)
            finally:
                self.muted = False

        return muted

    def _published(self, data: Mapping[str, Any], metadata: Any, kwargs: Mapping[str, Any]) -> None:
        transient = kwargs.get("transient") or {}
        display_id = transient.get("display_id") if isinstance(transient, Mapping) else None
        if kwargs.get("update") and display_id in self._display_ids:
            index = self._display_ids[display_id]
            if index < len(self.outputs):
                replaced = {k: v for k, v in data.items() if k != _WIDGET}
                self.outputs[index]["data"] = replaced
            return
        output = self.add_data("display_data", data, metadata)
        if output is not None and display_id:
            self._display_ids[display_id] = len(self.outputs) - 1

    def _post_run_cell(self, result: Any) -> None:
        self._error = getattr(result, "error_before_exec", None) or getattr(
            result, "error_in_exec", None
        )


class _Patches:
    """Instance attributes set for the length of one step, then put back as they were."""

    _MISSING = object()

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, target: Any, name: str, value: Any) -> None:
        self._undo.append((target, name, vars(target).get(name, self._MISSING)))
        setattr(target, name, value)

    def undo(self) -> None:
        for target, name, old in reversed(self._undo):
            if old is self._MISSING:
                vars(target).pop(name, None)
            else:
                setattr(target, name, old)
        self._undo.clear()


def _error_output(error: BaseException | None, outcome: StepOutcome) -> dict[str, Any]:
    step_error = outcome.error
    if step_error is not None:
        lines = step_error.text.splitlines() or [f"{step_error.type}: {step_error.message}"]
        return {
            "output_type": "error",
            "ename": step_error.type,
            "evalue": step_error.message,
            "traceback": lines,
        }
    lines = _ANSI.sub("", outcome.digest).splitlines()
    if error is not None:
        ename, evalue = type(error).__name__, str(error)
    else:
        last = lines[-1] if lines else "Error"
        ename, _, evalue = last.partition(": ")
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": lines}


# --- the notebook ------------------------------------------------------------------------


def prose(text: str) -> str:
    """A reply without its fenced code blocks (they become code cells)."""
    return strip_code_blocks(text)


def _fenced(blocks: Iterable[Mapping[str, Any]]) -> str:
    return "\n\n".join(fence(str(b.get("code", "")), str(b.get("language", ""))) for b in blocks)


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def _source(language: str, code: str) -> str:
    if language == SHELL:
        return "%%bash\n" + code
    return code


class _Builder:
    def __init__(self) -> None:
        import nbformat

        self.v4 = nbformat.v4
        self.cells: list[Any] = []
        self.count = 0
        self.usage = [0, 0]
        self.models: list[str] = []

    def markdown(self, ident: str, text: str, meta: Mapping[str, Any] | None = None) -> None:
        cell = self.v4.new_markdown_cell(text, id=ident)
        if meta:
            cell.metadata["agent_magic"] = dict(meta)
        self.cells.append(cell)

    def code(self, ident: str, source: str, outputs: list[dict[str, Any]], meta: Any) -> None:
        self.count += 1
        cell = self.v4.new_code_cell(source, id=ident, execution_count=self.count)
        for output in outputs:
            output = dict(output)
            if output["output_type"] == "execute_result":
                output["execution_count"] = self.count
            cell.outputs.append(_node(output))
        cell.metadata["agent_magic"] = dict(meta)
        if not meta.get("ok", True):
            cell.metadata["tags"] = ["raises-exception"]  # re-running goes on past it
        self.cells.append(cell)


def _node(output: Mapping[str, Any]) -> Any:
    from nbformat import from_dict

    return from_dict(dict(output))


def to_notebook(records: Iterable[Mapping[str, Any]]) -> Any:
    """The conversation in ``records`` (one conversation's transcript) as a notebook."""
    import nbformat

    from . import __version__

    build = _Builder()
    records = list(records)
    replies: dict[int, Mapping[str, Any]] = {}
    decisions: dict[int, Mapping[str, Any]] = {}
    ran: dict[int, list[Mapping[str, Any]]] = {}
    conversation = ""
    for record in records:
        conversation = conversation or str(record.get("conversation") or "")
        step = record.get("step")
        if record.get("event") == "reply":
            replies[step] = record
        elif record.get("event") == "decision":
            decisions[step] = record
        elif record.get("event") == "code":
            ran.setdefault(step, []).append(record)

    for number, record in enumerate(records):
        kind = record.get("event")
        if kind == "task":
            task = str(record.get("task") or "")
            text = f"### Task\n\n{task}"
            context = str(record.get("context") or "")
            if context:  # what the code could rely on (format 2 records carry it)
                text += (
                    "\n\n<details><summary>What the assistant was told about the "
                    f"session</summary>\n\n{fence(context)}\n</details>"
                )
            build.markdown(
                f"task-{number}",
                text,
                {
                    k: record.get(k)
                    for k in ("step", "model", "mode", "seed", "params", "time", "replay")
                    if record.get(k) is not None
                },
            )
        elif kind == "reply":
            _reply_cells(build, record, decisions.get(record.get("step")), ran, number)
        elif kind == "finished" and record.get("reason") != "terminated":
            build.markdown(
                f"finished-{number}",
                f"*{record.get('reason')}: {record.get('message')}*",
                {"reason": record.get("reason")},
            )

    nb = nbformat.v4.new_notebook(cells=build.cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["agent_magic"] = {
        "exported_by": f"agent_magic {__version__}",
        "conversation": conversation,
        "models": build.models,
        "usage": {"prompt_tokens": build.usage[0], "completion_tokens": build.usage[1]},
    }
    return nb


def _reply_cells(
    build: _Builder,
    reply: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    ran: Mapping[int, list[Mapping[str, Any]]],
    number: int,
) -> None:
    step = int(reply.get("step") or 0)
    usage = reply.get("usage") or {}
    build.usage[0] += int(usage.get("prompt_tokens") or 0)
    build.usage[1] += int(usage.get("completion_tokens") or 0)
    model = str(reply.get("model") or "")
    if model and model not in build.models:
        build.models.append(model)
    provenance = {
        "step": step,
        "model": model,
        "endpoint": reply.get("endpoint"),
        "usage": usage or None,
        "source": reply.get("source"),
    }
    steps = ran.get(step, [])
    label = (decision or {}).get("label") or ""
    action = (decision or {}).get("action")
    text = inert_markdown(prose(str(reply.get("content") or "")))
    proposed = (decision or {}).get("proposed") or []
    if action in ("skip", "stop", "feedback") and proposed:
        text += f"\n\n*Not run ({label}):*\n\n{_fenced(proposed)}"
    if decision and decision.get("edited") is not None and proposed:
        text += f"\n\n*Proposed, then edited before it ran:*\n\n{_fenced(proposed)}"
    meta = dict(provenance)
    if decision:
        meta["decision"] = label
        meta["automatic"] = bool(decision.get("automatic"))
    build.markdown(f"assistant-{number}", f"**Assistant** (step {step})\n\n{text}".strip(), meta)
    for code in steps:
        build.code(
            f"step-{step}-{code.get('index', 0)}-{number}",
            _source(str(code.get("language")), str(code.get("code") or "")),
            list(code.get("outputs") or []) or _digest_outputs(code),
            {
                "step": step,
                "decision": label,
                "automatic": bool((decision or {}).get("automatic")),
                "edited": bool((decision or {}).get("edited") is not None),
                "ok": bool(code.get("ok")),
                "model": model,
                "changes": code.get("changes") or "",
            },
        )
    if action == "feedback" and decision:
        build.markdown(
            f"feedback-{number}",
            f"**You** (instead of running step {step})\n\n{_quote(str(decision.get('text')))}",
            {"step": step, "decision": "feedback"},
        )


def _digest_outputs(code: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Outputs for a step recorded without them: its digest, and its error (format 2)."""
    digest = str(code.get("digest") or "")
    outputs = [{"output_type": "stream", "name": "stdout", "text": digest + "\n"}] if digest else []
    error = error_from_record(code.get("error"))
    if error is not None:
        lines = error.text.splitlines() or [f"{error.type}: {error.message}"]
        outputs.append(
            {
                "output_type": "error",
                "ename": error.type,
                "evalue": error.message,
                "traceback": lines,
            }
        )
    return outputs


def write_notebook(records: Iterable[Mapping[str, Any]], path: str | Path) -> Any:
    """Build, validate and save the notebook; returns it."""
    import nbformat

    nb = to_notebook(records)
    nbformat.validate(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        nbformat.write(nb, file)
    return nb
