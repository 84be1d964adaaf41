"""``%agent log``: the conversation as a person reads it, from the recording's records.

The one log renderer: :func:`render_log` for a transcript, :func:`log_entry` for one
message. Plain text for a terminal, Markdown made inert (no images, no raw HTML) for a
notebook. Not here: where the records come from (:class:`.recorder.Recorder`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..codeblocks import inert_markdown
from .records import message_text


def log_entry(role: str, content: str) -> tuple[str, str]:
    """One message as ``%agent log`` shows it: (plain text, Markdown made inert)."""
    return f"--- {role}\n{content}", f"**{role}**\n\n{inert_markdown(content)}"


def render_log(records: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """The conversation as ``%agent log`` shows it: (plain text, Markdown).

    Each message in order, as the model saw it, with the decisions people took (the
    mode's own decisions are left out: they only say "ran").
    """
    plain: list[str] = []
    markdown: list[str] = []

    def add(role: str, content: str) -> None:
        text, shown = log_entry(role, content)
        plain.append(text)
        markdown.append(shown)

    for record in records:
        kind = record.get("event")
        if kind == "request":
            for message in record.get("messages") or ():
                role = message.get("role")
                if role in ("system", "assistant"):
                    continue  # the system prompt is not shown; replies come from their records
                add(str(role), message_text(message))
        elif kind == "reply":
            content = record.get("content") or ""
            for call in record.get("tool_calls") or ():
                content += f"\n[tool call {call.get('name')}] {call.get('arguments')}"
            add("assistant", content)
        elif kind == "decision" and not record.get("automatic"):
            label = record.get("label") or record.get("action")
            plain.append(f"[step {record.get('step')}: {label}]")
            markdown.append(f"*step {record.get('step')}: {label}*")
        elif kind == "finished" and record.get("reason") not in ("terminated",):
            plain.append(f"[{record.get('reason')}] {record.get('message')}")
            markdown.append(f"*{record.get('reason')}: {record.get('message')}*")
    if not plain:
        return ("(no conversation yet)", "*(no conversation yet)*")
    return ("\n".join(plain), "\n\n---\n\n".join(markdown))
