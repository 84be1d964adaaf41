"""A recorded conversation as a clean notebook, and the step outputs that go into it.

* :class:`OutputCapture` hands the :class:`~agent_magic.transcript.Recorder` each step's
  outputs (``StepOutcome.outputs``, kept by :mod:`agent_magic.kernel.capture`).
* :func:`to_notebook` turns a conversation's transcript records into an nbformat
  notebook: the task and each assistant message as Markdown cells, each step that ran as
  a code cell holding the code that actually ran (after your edits) and its outputs, and
  the provenance (model, endpoint, usage, decisions) in cell metadata. It runs with a
  plain kernel: no extension, no key. :func:`write_notebook` validates and saves it.

Nothing here touches IPython; nbformat is imported when a notebook is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .codeblocks import SHELL, CodeBlock, inert_markdown
from .conversation import Executor, StepOutcome

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


class OutputCapture:
    """An Executor that runs ``inner`` and hands each step's outputs to :meth:`take`.

    The outputs themselves are kept by the one capture,
    :class:`agent_magic.kernel.capture.StepCapture`, and arrive as ``StepOutcome.outputs``;
    this only keeps the recorder's ``take()`` working until it reads the outcome.
    """

    def __init__(self, inner: Executor, shell: InteractiveShell | None = None) -> None:
        self.inner = inner
        self.outputs: list[dict[str, Any]] = []

    def take(self) -> list[dict[str, Any]]:
        outputs, self.outputs = self.outputs, []
        return outputs

    def run(self, block: CodeBlock) -> StepOutcome:
        outcome = self.inner.run(block)
        self.outputs = [dict(output) for output in outcome.outputs]
        return outcome


# --- the notebook ------------------------------------------------------------------------


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def prose(text: str) -> str:
    """A reply without its fenced code blocks (they become code cells)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            closes = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
            if closes and not line.strip()[len(match.group(1)) :].strip():
                fence = None
            continue
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _fenced(blocks: Iterable[Mapping[str, Any]]) -> str:
    return "\n\n".join(f"```{b.get('language', '')}\n{b.get('code', '')}\n```" for b in blocks)


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

    pending_context: str | None = None
    for number, record in enumerate(records):
        kind = record.get("event")
        if kind == "task":
            task = str(record.get("task") or "")
            pending_context = task
            build.markdown(
                f"task-{number}",
                f"### Task\n\n{task}",
                {
                    k: record.get(k)
                    for k in ("step", "model", "mode", "seed", "params", "time", "replay")
                    if record.get(k) is not None
                },
            )
        elif kind == "request" and pending_context is not None:
            # The namespace summary sent with the task says what the code could rely on.
            for message in record.get("messages") or ():
                content = message.get("content")
                told = (
                    message.get("role") == "user"
                    and isinstance(content, str)
                    and content.startswith(pending_context)
                    and len(content) > len(pending_context)
                )
                if told:
                    context = content[len(pending_context) :].strip()
                    build.cells[-1].source += (
                        "\n\n<details><summary>What the assistant was told about the "
                        f"session</summary>\n\n```\n{context}\n```\n</details>"
                    )
            pending_context = None
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
    digest = str(code.get("digest") or "")
    if not digest:
        return []
    return [{"output_type": "stream", "name": "stdout", "text": digest + "\n"}]


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
