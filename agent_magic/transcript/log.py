"""``%agent log``: the conversation as a person reads it, from the recorder's records.

The one log renderer: :func:`render_log` for a transcript, :func:`log_entry` for one
message. Two forms of the same log: plain text for a terminal, and Markdown for a
notebook (JupyterLab, Notebook 7, VS Code) in which

* the assistant's replies are its Markdown, made inert (no images, no raw HTML);
* what a person typed (the task, feedback) shows as typed: :func:`words` escapes it, so
  ``a*x + b*y`` is not italics and a line of dashes is not a rule or a heading;
* everything else sent to the model (step outputs, tracebacks, the namespace summary,
  tool calls) is a fenced code block (:func:`agent_magic.text.fence`), kept whole.

Not here: where the records come from (:class:`.recorder.Recorder`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..codeblocks import CodeBlock, inert_markdown
from ..conversation import ToolCallRequest
from ..text import DISPLAY_LIMIT, fence, shown_head, strip_ansi
from .forms import message_role, message_text
from .records import DecisionRecord, FinishedRecord, Record, ReplyRecord, RequestRecord, TaskRecord

# The characters that can start Markdown (or Jupyter's maths, ``$``) anywhere in a line.
_SPECIAL = re.compile(r"[\\`*_{}\[\]<>()#+\-!|~$&^=]")
_ORDERED = re.compile(r"^(\d+)([.)])")  # "1." or "1)" at a line's start: a list item


def words(text: str) -> str:
    """A person's words as Markdown that renders them as typed, line breaks included.

    Every character that Markdown (or a notebook's maths) could read is backslash-escaped,
    a leading indent is kept as no-break spaces (four spaces would make a code block),
    and each line of a paragraph ends in a hard break.
    """
    lines = []
    for line in strip_ansi(text).splitlines():
        body = line.lstrip(" \t")
        if not body:
            lines.append("")
            continue
        indent = line[: len(line) - len(body)].replace("\t", "    ")
        body = _ORDERED.sub(r"\1\\\2", _SPECIAL.sub(r"\\\g<0>", body))
        lines.append("&nbsp;" * len(indent) + body)
    shown = [
        f"{line}\\" if line and index + 1 < len(lines) and lines[index + 1] else line
        for index, line in enumerate(lines)
    ]
    return "\n".join(shown)


def log_entry(role: str, content: str) -> tuple[str, str]:
    """One message as ``%agent log`` shows it: (plain text, Markdown).

    The assistant's words are its Markdown (made inert); anything else is a code block.
    """
    if role == "assistant":
        return f"--- {role}\n{content}", f"**{role}**\n\n{inert_markdown(content)}"
    return f"--- {role}\n{content}", f"**{role}**\n\n{fence(strip_ansi(content))}"


def render_log(records: Iterable[Record], *, limit: int = DISPLAY_LIMIT) -> tuple[str, str]:
    """The conversation as ``%agent log`` shows it: (plain text, Markdown).

    Each message in order, as the model saw it, with the decisions people took (the
    mode's own decisions are left out: they only say "ran"). A reply is shown up to
    ``limit`` characters, as in the cell.
    """
    plain: list[str] = []
    markdown: list[str] = []
    task: TaskRecord | None = None  # the task record of the cell being read

    for record in records:
        if isinstance(record, TaskRecord):
            task = record
        elif isinstance(record, RequestRecord):
            kinds = record.kinds or ("",) * len(record.messages)
            for message, said in zip(record.messages, kinds, strict=False):
                role = message_role(message)
                if role in ("system", "assistant"):
                    continue  # the system prompt is not shown; replies come from their records
                text = message_text(message)
                plain.append(f"--- {role}\n{text}")
                markdown.append(_sent(role, said, text, task))
        elif isinstance(record, ReplyRecord):
            _reply(record, limit, plain, markdown)
        elif isinstance(record, DecisionRecord) and not record.automatic:
            label = record.label or record.action
            plain.append(f"[step {record.step}: {label}]")
            markdown.append(f"*step {record.step}: {label}*")
            if record.edited:
                markdown.append(
                    "*as edited:*\n\n" + "\n\n".join(_block(block) for block in record.edited)
                )
        elif isinstance(record, FinishedRecord) and record.reason != "terminated":
            # The message says it for people; the reason is the record's label for tools.
            plain.append(f"[{record.message}]")
            markdown.append(f"*{words(record.message)}*")
    if not plain:
        return ("(no conversation yet)", "*(no conversation yet)*")
    return ("\n".join(plain), "\n\n---\n\n".join(markdown))


def _reply(record: ReplyRecord, limit: int, plain: list[str], markdown: list[str]) -> None:
    """A reply, its thinking folded and its tool calls as code, each cut to ``limit``."""
    reply = record.reply
    content, thought = shown_head(reply.content, limit), reply.thinking
    calls = [replace(c, arguments=shown_head(c.arguments, limit)) for c in reply.tool_calls]
    shown = content
    for call in calls:
        shown += f"\n[tool call {call.name}] {call.arguments}"
    if thought:
        took = thought_for(record.thinking_seconds)
        plain.append(f"--- assistant's thinking ({took})\n{thought}")
    plain.append(f"--- assistant\n{shown}")
    blocks = [_tool_call(call) for call in calls]
    heading = f"**assistant** · step {record.step}"
    markdown.append(
        "\n\n".join([heading, *_folded_thinking(thought, record), inert_markdown(content)])
        + "".join(f"\n\n{block}" for block in blocks)
    )


def thought_for(seconds: Any) -> str:
    """ "thought for 41 s" (or just "thought" when the time is not known)."""
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        return f"thought for {seconds:.0f} s"
    return "thought"


def _folded_thinking(thought: str, record: ReplyRecord) -> list[str]:
    """The model's thinking, folded under a summary line (HTML ``details``, which
    notebooks render as a disclosure), its text fenced: it is never the answer."""
    if not thought:
        return []
    summary = f"{thought_for(record.thinking_seconds)} (thinking, never run)"
    return [f"<details><summary>{summary}</summary>\n\n{fence(strip_ansi(thought))}\n\n</details>"]


def _sent(role: str, kind: str, text: str, task: TaskRecord | None) -> str:
    """A message sent to the model, as Markdown: a person's words (the task, an answer)
    escaped, the rest fenced. ``kind`` is the message's kind, as its request recorded it."""
    words_typed = task.task if task is not None else ""
    context = task.context if task is not None else ""
    if kind == "task" and text == (f"{words_typed}\n\n{context}" if context else words_typed):
        shown = f"**you** · task\n\n{words(words_typed)}"
        rest = context.strip("\n")
        if rest:
            shown += f"\n\n*sent with it:*\n\n{fence(strip_ansi(rest))}"
        return shown
    if kind == "feedback":
        return f"**you**\n\n{words(text)}"
    what = "step output" if role == "tool" else "sent to the assistant"
    return f"**{what}**\n\n{fence(strip_ansi(text))}"


def _tool_call(call: ToolCallRequest) -> str:
    """A tool call as the code it asks to run (or its arguments as they came)."""
    try:
        code = json.loads(call.arguments).get("code")
    except (ValueError, AttributeError):
        code = None
    language = "sh" if call.name == "run_shell" else "python"
    if isinstance(code, str):
        return f"*tool call {call.name}:*\n\n{fence(code, language)}"
    return f"*tool call {call.name}:*\n\n{fence(call.arguments)}"


def _block(block: CodeBlock) -> str:
    return fence(block.code, block.language)
