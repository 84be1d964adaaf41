"""What the loop tells the model, and how it words and judges a step.

The default system prompt and the tools note, the modes, the ``run_python`` /
``run_shell`` tool schemas, the warnings a review shows (:func:`review_warnings`), what
the model is told about a step's outcome (``step_report``, ``user_content``) or a skipped,
refused or cut-off one, and :func:`edit_diff`. Pure functions and constants: not here
is the loop that uses them (:mod:`.loop`) or anything that runs code.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ..codeblocks import PYTHON, SHELL, CodeBlock
from ..defaults import DEFAULT_SYSTEM_PROMPT as DEFAULT_SYSTEM_PROMPT
from ..defaults import MODES as MODES
from ..defaults import Mode as Mode
from .events import Proposal
from .history import cut_off_why
from .seams import StepOutcome, ToolCallRequest

TOOLS_NOTE = """
Run code by calling the run_python tool (or run_shell for shell commands) rather than
writing fenced blocks; the same rules apply, and the user approves each call.
"""


# --- the tools ----------------------------------------------------------------------

RUN_PYTHON_TOOL = {
    "type": "function",
    "function": {
        "name": "run_python",
        "description": "Run Python code in the user's live IPython session and see its output.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python code to run."}},
            "required": ["code"],
        },
    },
}
RUN_SHELL_TOOL = {
    "type": "function",
    "function": {
        "name": "run_shell",
        "description": "Run a shell command (sh) in the session's working directory.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command."}},
            "required": ["command"],
        },
    },
}
_TOOL_LANGUAGES = {"run_python": PYTHON, "run_shell": SHELL}


SKIPPED = "I skipped that step; it did not run."
SKIPPED_TOOL = "Not run: the user skipped this step."


def reimports(code: str, transform: Callable[[str], str] | None) -> set[tuple[int, str]]:
    """(line, name) of each ``from IPython... import name``: it binds the very object
    IPython put under that name (``display``, ``get_ipython``), so nothing changes; models
    write it all the time."""
    import ast

    try:
        tree = ast.parse(transform(code) if transform is not None else code)
    except Exception:  # not Python: the guard found nothing to check either
        return set()
    return {
        (node.lineno, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").split(".")[0] == "IPython"
        and node.level == 0
        for alias in node.names
        if alias.asname is None or alias.asname == alias.name
    }


def review_warnings(proposal: Proposal) -> list[str]:
    """The lines a review shows above the code, from the proposal's fields (both faces)."""
    lines = []
    if proposal.cut_off is not None:
        lines.append(
            f"This reply was cut off ({cut_off_why(proposal.cut_off)}): its code may be incomplete."
        )
    if proposal.protected:
        lines.append(f"Protected names: this code {proposal.protected}.")
    if proposal.invisible:
        lines.append(
            f"Invisible characters: this code {proposal.invisible}; they can make code read "
            "differently from what runs, so they are shown escaped (\\u202e)."
        )
    if proposal.repeats:
        lines.append(f"This is the same code that {proposal.repeats}.")
    if proposal.signs_off:
        lines.append("The assistant signs off with this step: if it runs cleanly, it ends.")
    if proposal.copies:
        lines.append(
            f"Copied shorthand: {proposal.copies}. It is not data: the values it stands "
            "for are not in the code."
        )
    if proposal.injected:
        lines.append(
            f'The last output addresses the assistant: "{proposal.injected}". It is data, '
            "not your instruction: check that this step does what you asked."
        )
    return lines


def still_too_long(error: str) -> str:
    """The one line when a trimmed request still did not fit: it names the way on."""
    if "--new" in error:
        return f"{error} (it was trimmed and asked again, and still did not fit)"
    return (
        f"{error}; the conversation was trimmed and asked again and still does not fit the "
        "model's context window: start afresh with --new or %agent reset"
    )


def cut_off_text(cut_off: str) -> str:
    return (
        f"Your last reply was cut off ({cut_off_why(cut_off)}), so its code was not run: "
        "it may be incomplete. Propose a shorter step: less code, fewer words around it."
    )


def cut_short_text(cut_off: str) -> str:
    """A cut-off reply that holds no code: it may have been about to propose some."""
    return (
        f"Your last reply was cut off ({cut_off_why(cut_off)}) before it was complete. "
        "Give it again, shorter: one small step, fewer words around it."
    )


def repeat_text(repeats: str, hint: str = "") -> str:
    said = f"That step was not run: it is the same code that {repeats}"
    if repeats.startswith("failed"):
        text = f"{said}, and it would fail the same way. Read that error and change the code."
        return f"{text}\n{hint}" if hint else text
    return (
        f"{said}; its output is above. If the task is done, answer in words and end with "
        "TERMINATE; if not, change the code."
    )


# After a step that ran cleanly: small models otherwise go on rewriting a right answer.
DONE_HINT = (
    "If this completes the task, answer in words and end with TERMINATE; if not, "
    "propose the next step."
)


def nudge_text(nothing_ran: bool) -> str:
    why = "No code has run for this task yet." if nothing_ran else "The last step failed."
    return (
        f"{why} If the task needs code, propose the next step in a ```python block; if it is "
        "done, say so in words and end with TERMINATE."
    )


def protected_text(line: str) -> str:
    return (
        f"That step was not run: its code {line}. Those names are protected: changing them "
        "needs the user's approval, and nobody can be asked in this run. Do the task "
        "without changing them."
    )


def invisible_text(line: str) -> str:
    """What the model is told when a step with invisible characters is refused unseen."""
    return (
        f"That step was not run: its code {line}. Such characters make code read "
        "differently from what runs, so a person must see it first, and nobody can be "
        "asked in this run. Write the code without them (inside a string, use an escape "
        "such as \\u200b)."
    )


FINISH_TEXT = {
    "signed_off": "The assistant's last step ran; finished.",
    "terminated": "The assistant finished.",
    "no_code": "The assistant replied without code; finished.",
    "max_turns": "Reached the turn limit; run the cell again to continue.",
}


def user_content(text: str, images: list[tuple[str, bytes]]) -> str | list[dict[str, Any]]:
    """A user message's content: plain text, or text plus images in the vision format."""
    if not images:
        return text
    import base64

    parts: list[dict[str, Any]] = [{"type": "text", "text": text or "The step displayed:"}]
    for mime, data in images:
        url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def tool_block(call: ToolCallRequest) -> CodeBlock:
    """The block a tool call proposes; arguments that cannot be read are shown as sent
    (:func:`invalid_arguments` keeps them from running)."""
    language = _TOOL_LANGUAGES.get(call.name, call.name)
    code = _tool_code(call.arguments)
    return CodeBlock(language, call.arguments if code is None else code, tool_call_id=call.id)


def _tool_code(arguments: str) -> str | None:
    """The code (or command) string in a tool call's JSON arguments, or None."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError:
        return None
    code = args.get("code") or args.get("command") if isinstance(args, dict) else None
    return code if isinstance(code, str) and code.strip() else None


def invalid_arguments(calls: Iterable[ToolCallRequest]) -> str:
    """What the model is told when a run tool's arguments are not a JSON object holding
    its code (a Python dict literal, JSON cut short): one line, and nothing of that reply
    runs. "" when every call can be read."""
    for call in calls:
        if call.name not in _TOOL_LANGUAGES or _tool_code(call.arguments) is not None:
            continue
        key = "code" if call.name == "run_python" else "command"
        try:
            json.loads(call.arguments or "{}")
            why = f'are not a JSON object with a non-empty "{key}" string'
        except ValueError as error:
            why = f"are not valid JSON ({error})"
        return (
            f"the arguments of your {call.name} call {why}, so nothing in that reply ran. "
            f'Call {call.name} again with JSON arguments, e.g. {{"{key}": "print(1)"}}.'
        )
    return ""


def step_report(outcome: StepOutcome) -> str:
    """What the model is told about one step, built from the outcome's fields."""
    parts = ["It ran successfully." if outcome.ok else "It failed."]
    if outcome.timed_out is not None:
        parts.append(
            f"The step was stopped after {outcome.timed_out:g} s (the step time limit); "
            "the session and its variables are kept. Make the step faster or smaller."
        )
    if outcome.exited:
        parts.append(
            "The step called exit()/quit()/sys.exit(); the user's session was kept running."
        )
    if outcome.digest:
        parts.append(outcome.digest)
    if outcome.error is not None and outcome.error.text:
        parts.append("error:\n" + outcome.error.text)
    elif outcome.error is not None:
        parts.append(f"error:\n{outcome.error.type}: {outcome.error.message}")
    if len(parts) == 1:
        parts.append("(no output)")
    if outcome.changes:
        parts.append(outcome.changes)
    return "\n".join(parts)


def edit_diff(old: Iterable[CodeBlock], new: Iterable[CodeBlock]) -> str:
    """The one edit diff (unified, "proposed" -> "edited"): told to the model, shown in
    the review's record."""
    diff = difflib.unified_diff(
        "\n\n".join(b.code for b in old).splitlines(),
        "\n\n".join(b.code for b in new).splitlines(),
        "proposed",
        "edited",
        lineterm="",
    )
    return "\n".join(diff)


def with_code(block: CodeBlock, code: str) -> CodeBlock:
    return replace(block, code=code)
