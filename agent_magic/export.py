"""A recorded conversation as a clean notebook.

* :func:`to_notebook` turns a conversation's records (the recorder's, in memory, or
  :func:`~agent_magic.transcript.read_records` of a file) into an nbformat
  notebook: the task and each assistant message as Markdown cells, each step that ran as
  a code cell holding the code that actually ran (after your edits) and its outputs, and
  the provenance (model, endpoint, usage, decisions) in cell metadata. It runs with a
  plain kernel: no extension, no key. :func:`write_notebook` validates and saves it.

The step outputs come from the records (``StepOutcome.outputs``, kept by
:mod:`agent_magic.kernel.capture` and written by the recorder). Nothing here touches
IPython; nbformat is imported when a notebook is built.

It opens clean: the sign-off word is left out of the prose (the record keeps it); usage
is the servers' where they sent it, else an estimate marked ``"estimated": true``; and
the file is as Jupyter writes it (nbformat's layout, a trailing newline, the kernelspec
and ``language_info`` the Python kernel reports), so reading and saving it again changes
no byte and a Lab that opens it does not mark it modified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .codeblocks import SHELL, CodeBlock, inert_markdown, strip_code_blocks
from .text import fence
from .transcript.log import thought_for
from .transcript.records import (
    CodeRecord,
    DecisionRecord,
    FinishedRecord,
    Record,
    ReplyRecord,
    RequestRecord,
    TaskRecord,
)
from .ui.signoff import without_marker
from .window import estimate_tokens

# --- the notebook ------------------------------------------------------------------------


def prose(text: str) -> str:
    """A reply without its fenced code blocks (they become code cells)."""
    return strip_code_blocks(text)


def _fenced(blocks: Iterable[CodeBlock]) -> str:
    return "\n\n".join(fence(b.code, b.language) for b in blocks)


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
        self.estimated = 0  # replies whose usage is an estimate (the server sent none)
        self.models: list[str] = []
        self.marker = "TERMINATE"
        # The full messages of each request, by its rkey (for an estimate of its usage).
        self.requests: dict[str, list[Any]] = {}

    def markdown(self, ident: str, text: str, meta: Mapping[str, Any] | None = None) -> None:
        cell = self.v4.new_markdown_cell(text, id=ident)
        if meta:
            cell.metadata["agent_magic"] = dict(meta)
        self.cells.append(cell)

    def code(
        self, ident: str, source: str, outputs: Iterable[Mapping[str, Any]], meta: Any
    ) -> None:
        self.count += 1
        cell = self.v4.new_code_cell(source, id=ident, execution_count=self.count)
        for output in outputs:
            output = dict(output)
            if output["output_type"] == "execute_result":
                output["execution_count"] = self.count
            cell.outputs.append(_node(output))
        cell.metadata["agent_magic"] = dict(meta)
        if not meta["ok"]:
            cell.metadata["tags"] = ["raises-exception"]  # re-running goes on past it
        self.cells.append(cell)


def _node(output: Mapping[str, Any]) -> Any:
    from nbformat import from_dict

    return from_dict(dict(output))


def to_notebook(records: Iterable[Record], marker: str = "TERMINATE") -> Any:
    """The conversation in ``records`` (one conversation's transcript) as a notebook;
    ``marker``, the sign-off word, is left out of the replies' prose."""
    import nbformat

    from .defaults import VERSION

    build = _Builder()
    build.marker = marker
    records = list(records)
    thread: list[Any] = []
    replies: dict[int, ReplyRecord] = {}
    decisions: dict[int, DecisionRecord] = {}
    ran: dict[int, list[CodeRecord]] = {}
    for record in records:
        if isinstance(record, RequestRecord):
            thread = thread[: record.base] + list(record.messages)
            build.requests[record.rkey] = thread
        elif isinstance(record, ReplyRecord):
            replies[record.step] = record
        elif isinstance(record, DecisionRecord):
            decisions[record.step] = record
        elif isinstance(record, CodeRecord):
            ran.setdefault(record.step, []).append(record)
    conversation = next((r.conversation for r in records if r.conversation), "")

    for number, record in enumerate(records):
        if isinstance(record, TaskRecord):
            text = f"### Task\n\n{record.task}"
            if record.context:  # what the code could rely on (format 2 records carry it)
                text += (
                    "\n\n<details><summary>What the assistant was told about the "
                    f"session</summary>\n\n{fence(record.context)}\n</details>"
                )
            build.markdown(f"task-{number}", text, _task_meta(record))
        elif isinstance(record, ReplyRecord):
            _reply_cells(build, record, decisions.get(record.step), ran, number)
        elif isinstance(record, FinishedRecord) and record.reason != "terminated":
            build.markdown(f"finished-{number}", f"*{record.message}*", {"reason": record.reason})

    nb = nbformat.v4.new_notebook(cells=build.cells)
    nb.metadata["kernelspec"] = _kernelspec()
    nb.metadata["language_info"] = _language_info()
    usage: dict[str, Any] = {"prompt_tokens": build.usage[0], "completion_tokens": build.usage[1]}
    if build.estimated:  # some replies came without usage: their share is an estimate
        usage["estimated"] = True
        usage["estimated_replies"] = build.estimated
    nb.metadata["agent_magic"] = {
        "exported_by": f"agent_magic {VERSION}",
        "conversation": conversation,
        "models": build.models,
        "usage": usage,
    }
    return nb


def _task_meta(task: TaskRecord) -> dict[str, Any]:
    """The task's provenance, as its cell's metadata (what the record does not say, left out)."""
    meta = {"step": task.step, "model": task.model, "mode": task.mode, "seed": task.seed}
    meta |= {"params": dict(task.params), "time": task.time, "replay": task.replay}
    return {name: value for name, value in meta.items() if value is not None}


def _kernelspec() -> dict[str, str]:
    """The python3 kernelspec as a frontend writes it once the kernel starts."""
    display = "Python 3 (ipykernel)"
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        display = KernelSpecManager().get_kernel_spec("python3").display_name or display
    except Exception:  # no jupyter_client, or no such kernel here: ipykernel's own name
        pass
    return {"display_name": display, "language": "python", "name": "python3"}


def _language_info() -> dict[str, Any]:
    """What the Python kernel reports as its language (ipykernel's ``language_info``)."""
    import sys

    major = sys.version_info[0]
    return {
        "codemirror_mode": {"name": "ipython", "version": major},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": f"ipython{major}",
        "version": sys.version.split()[0],
    }


def _usage(build: _Builder, record: ReplyRecord) -> dict[str, Any] | None:
    """The reply's usage as its server sent it, else an estimate marked as one."""
    reply = record.reply
    if reply.usage is not None:
        return {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "reasoning_tokens": reply.usage.reasoning_tokens,
        }
    sent = build.requests.get(record.rkey)
    if sent is None:
        return None
    completion = estimate_tokens(reply.content)
    for call in reply.tool_calls:
        completion += estimate_tokens(f"{call.name} {call.arguments}")
    build.estimated += 1
    return {
        "prompt_tokens": estimate_tokens(sent),
        "completion_tokens": completion,
        "estimated": True,
    }


def _reply_cells(
    build: _Builder,
    record: ReplyRecord,
    decision: DecisionRecord | None,
    ran: Mapping[int, list[CodeRecord]],
    number: int,
) -> None:
    step, reply = record.step, record.reply
    usage = _usage(build, record) or {}
    build.usage[0] += usage.get("prompt_tokens", 0)
    build.usage[1] += usage.get("completion_tokens", 0)
    if reply.model and reply.model not in build.models:
        build.models.append(reply.model)
    meta: dict[str, Any] = {"step": step, "model": reply.model, "endpoint": reply.endpoint}
    meta |= {"usage": usage or None, "source": reply.source}
    label = decision.label if decision else ""
    text = inert_markdown(prose(without_marker(reply.content, build.marker)))
    if reply.thinking:  # the thinking itself stays in the recording: one line here
        text = f"*({thought_for(record.thinking_seconds)})*\n\n{text}"
    proposed = (decision.proposed if decision else None) or ()
    if decision and decision.action in ("skip", "stop", "feedback") and proposed:
        text += f"\n\n*Not run ({label}):*\n\n{_fenced(proposed)}"
    if decision and decision.edited is not None and proposed:
        text += f"\n\n*Proposed, then edited before it ran:*\n\n{_fenced(proposed)}"
    if decision:
        meta |= {"decision": label, "automatic": decision.automatic}
    build.markdown(f"assistant-{number}", f"**Assistant** (step {step})\n\n{text}".strip(), meta)
    for code in ran.get(step, []):
        build.code(
            f"step-{step}-{code.index}-{number}",
            _source(code.language, code.code),
            code.outputs or _digest_outputs(code),
            {
                "step": step,
                "decision": label,
                "automatic": bool(decision and decision.automatic),
                "edited": bool(decision and decision.edited is not None),
                "ok": code.ok,
                "model": reply.model,
                "changes": code.changes,
            },
        )
    if decision and decision.action == "feedback":
        build.markdown(
            f"feedback-{number}",
            f"**You** (instead of running step {step})\n\n{_quote(decision.text)}",
            {"step": step, "decision": "feedback"},
        )


def _digest_outputs(code: CodeRecord) -> list[dict[str, Any]]:
    """Outputs for a step recorded without them: its digest, and its error (format 2)."""
    digest = code.digest
    outputs = [{"output_type": "stream", "name": "stdout", "text": digest + "\n"}] if digest else []
    error = code.error
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


def write_notebook(records: Iterable[Record], path: str | Path, marker: str = "TERMINATE") -> Any:
    """Build, validate and save the notebook (as Jupyter writes one); returns it."""
    import nbformat

    nb = to_notebook(records, marker)
    nbformat.validate(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        nbformat.write(nb, file)
    return nb
