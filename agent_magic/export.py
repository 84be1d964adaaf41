"""A recorded conversation as a clean notebook.

* :func:`to_notebook` turns a conversation's transcript records into an nbformat
  notebook: the task and each assistant message as Markdown cells, each step that ran as
  a code cell holding the code that actually ran (after your edits) and its outputs, and
  the provenance (model, endpoint, usage, decisions) in cell metadata. It runs with a
  plain kernel: no extension, no key. :func:`write_notebook` validates and saves it.

The step outputs come from the records (``StepOutcome.outputs``, kept by
:mod:`agent_magic.kernel.capture` and written by the recorder). Nothing here touches
IPython; nbformat is imported when a notebook is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .codeblocks import SHELL, inert_markdown, strip_code_blocks
from .text import fence
from .transcript.records import error_from_record

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
                f"*{record.get('message')}*",
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
