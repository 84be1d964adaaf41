"""A recorded conversation as a clean notebook.

* :func:`to_notebook` turns a conversation's transcript records into an nbformat
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

from .codeblocks import SHELL, inert_markdown, strip_code_blocks
from .text import fence
from .transcript.log import thought_for
from .transcript.records import error_from_record
from .ui.signoff import without_marker
from .window import estimate_tokens

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


def to_notebook(records: Iterable[Mapping[str, Any]], marker: str = "TERMINATE") -> Any:
    """The conversation in ``records`` (one conversation's transcript) as a notebook;
    ``marker``, the sign-off word, is left out of the replies' prose."""
    import nbformat

    from .defaults import VERSION

    build = _Builder()
    build.marker = marker
    records = list(records)
    thread: list[Any] = []
    for record in records:
        if record.get("event") == "request" and isinstance(record.get("messages"), list):
            thread = thread[: int(record.get("base") or 0)] + list(record["messages"])
            build.requests[str(record.get("rkey") or "")] = thread
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


def _usage(build: _Builder, reply: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reply's usage as its server sent it, else an estimate marked as one."""
    usage = reply.get("usage")
    if usage:
        return dict(usage)
    sent = build.requests.get(str(reply.get("rkey") or ""))
    if sent is None:
        return None
    completion = estimate_tokens(str(reply.get("content") or ""))
    for call in reply.get("tool_calls") or ():
        completion += estimate_tokens(f"{call.get('name')} {call.get('arguments')}")
    build.estimated += 1
    return {
        "prompt_tokens": estimate_tokens(sent),
        "completion_tokens": completion,
        "estimated": True,
    }


def _reply_cells(
    build: _Builder,
    reply: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    ran: Mapping[int, list[Mapping[str, Any]]],
    number: int,
) -> None:
    step = int(reply.get("step") or 0)
    usage = _usage(build, reply) or {}
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
    text = inert_markdown(prose(without_marker(str(reply.get("content") or ""), build.marker)))
    if reply.get("thinking"):  # the thinking itself stays in the recording: one line here
        text = f"*({thought_for(reply.get('thinking_seconds'))})*\n\n{text}"
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


def write_notebook(
    records: Iterable[Mapping[str, Any]], path: str | Path, marker: str = "TERMINATE"
) -> Any:
    """Build, validate and save the notebook (as Jupyter writes one); returns it."""
    import nbformat

    nb = to_notebook(records, marker)
    nbformat.validate(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        nbformat.write(nb, file)
    return nb
