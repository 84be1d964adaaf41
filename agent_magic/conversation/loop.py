"""The loop itself: :class:`Conversation`, one cell's work over a :class:`History`.

:meth:`Conversation.run` asks the model, proposes its code, waits for a
:class:`Decision`, runs the step and reports it, as a generator of events. What may run
without asking anyone is decided in :mod:`.policy`; a sign-off that holds code has it
proposed, and ends the conversation if it runs cleanly; a person's **Run all**
(``Decision.rest``) turns the rest of this cell to mode terminate; a spent budget
(:class:`BudgetSpent`) is asked about (:class:`BudgetAsked`) where someone can answer.
Each request is fitted to the context window (:mod:`.fitting`); a context-length error
trims harder and asks once more. Not here: the seams (:mod:`.seams`), the events
(:mod:`.events`), the wording (:mod:`.rules`), the drivers (:mod:`.drive`), building any
of it for a kernel (:mod:`agent_magic.session`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ..codeblocks import CodeBlock, is_termination, prints_marker, proposed_blocks
from ..guard import DEFAULT_PROTECTED
from ..invisible import describe as describe_invisible
from ..text import fence
from ..thinking import ThinkingSplitter, without_thinking
from ..window import estimate_tokens, tools_tokens
from .events import (
    BudgetAsked,
    CodeRan,
    Decided,
    Decision,
    Event,
    Finished,
    Proposal,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    Steps,
    TaskStarted,
)
from .fitting import fitted_request, request_window
from .history import History, Message
from .injection import addressed_to_assistant
from .lookback import CellSteps
from .markers import Preview, copied_markers, elided_previews
from .policy import guarded, unasked, unreadable
from .rules import (
    DEFAULT_SYSTEM_PROMPT,
    DONE_HINT,
    FINISH_TEXT,
    RUN_PYTHON_TOOL,
    RUN_SHELL_TOOL,
    SKIPPED,
    SKIPPED_TOOL,
    TOOLS_NOTE,
    Mode,
    edit_diff,
    step_report,
    still_too_long,
    tool_block,
    user_content,
)
from .seams import (
    BudgetSpent,
    ChatClient,
    ChatError,
    ChatReply,
    ChatStopped,
    ContextWindowExceeded,
    Executor,
    ThinkingDelta,
)


@dataclass
class Conversation:
    """One cell's work over a :class:`History` that outlives it: the history is the memory.

    Build a fresh one per cell with that cell's chat client, executor and settings; a
    conversation built without a history starts its own.

    ``protected`` names are guarded: a Python step that would rebind, delete or change
    one in place is always asked, in every mode; with ``attended`` False (nobody can be
    asked: a headless run) it is refused and the model told why. ``transform`` turns
    IPython syntax into Python for that check (the session passes
    ``shell.transform_cell``). ``context_window`` (tokens) bounds every request; None asks
    the chat client (``chat.context_window()``, if it has one). ``reply_room`` is what is
    left for the reply (None: a quarter of the window, at most 4096).
    """

    chat: ChatClient
    executor: Executor
    mode: Mode = "always"
    max_turns: int = 10
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    termination_marker: str = "TERMINATE"
    use_tools: bool = False
    history: History = field(default_factory=History)
    protected: frozenset[str] = DEFAULT_PROTECTED
    transform: Callable[[str], str] | None = None
    attended: bool = True
    context_window: int | None = None
    reply_room: int | None = None
    # This cell's steps so far, for the rules that look back (repeats, the nudge).
    _steps: CellSteps = field(default_factory=CellSteps, init=False, repr=False)
    _turns_left: int = field(default=0, init=False, repr=False)
    # The last step's output addressed the assistant: the line, for the next proposal.
    _injected: str = field(default="", init=False, repr=False)
    # The shortened previews the model was shown (the namespace summary, step reports).
    _previews: set[Preview] = field(default_factory=set, init=False, repr=False)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.history.messages

    @property
    def replies(self) -> list[ChatReply]:
        return self.history.replies

    @property
    def steps_taken(self) -> int:
        return self.history.steps_taken

    def run(self, task: str, *, context: str = "") -> Steps:
        """Work on ``task`` until the model finishes, the human stops, or turns run out."""
        history = self.history
        if not self.messages:
            system = self.system_prompt
            if self.use_tools:
                system += TOOLS_NOTE
            history.add(Message("system", "system", system))
        before, steps_before = len(self.messages), self.steps_taken
        content = task if not context else f"{task}\n\n{context}"
        history.add(Message("user", "task", content))
        self._previews |= elided_previews(context)
        answered = False
        turns = 0
        try:
            # In the try: an interrupt while the task is shown is recorded like any other.
            yield TaskStarted(task, self.steps_taken + 1, context)
            while True:
                turns += 1
                history.steps_taken += 1
                step = history.steps_taken
                reply = yield from self._ask(step)
                answered = True
                blocks = self._blocks(reply)
                done = is_termination(reply.content, self.termination_marker) or prints_marker(
                    blocks, self.termination_marker
                )
                signs_off = done and bool(blocks)
                # A reply cut off before any code (a stall, the token limit) is not an
                # answer in words: the person and the model are told, and it is asked again.
                cut_short = reply.cut_off is not None and not blocks and not done
                final_reason = (
                    "terminated"
                    if done and not blocks
                    else ("no_code" if not blocks and not cut_short else "")
                )
                out_of_turns = not final_reason and not signs_off and turns >= self.max_turns
                self._turns_left = self.max_turns - turns
                final = bool(final_reason) or out_of_turns
                yield ReplyReceived(step, reply, blocks, final)
                proposal = Proposal(
                    step,
                    reply.content,
                    blocks,
                    final,
                    final_reason or ("max_turns" if out_of_turns else ""),
                    cut_off=reply.cut_off,
                    protected=guarded(blocks, self.protected, self.transform),
                    signs_off=signs_off,
                    repeats=self._steps.repeats(blocks) if not final_reason else "",
                    copies=copied_markers(blocks, self.transform, self._previews)
                    if not final_reason
                    else "",
                    injected=self._injected,
                    invisible=describe_invisible(block.code for block in blocks),
                )
                self._injected = ""
                refusal = unreadable(reply, cut_short)
                if refusal is not None:
                    decision, automatic = refusal, True
                else:
                    decision, automatic = yield from self._decide(proposal)
                yield Decided(proposal, decision, automatic)
                if decision.rest and self.mode == "always":  # Run all: this cell's rest
                    self.mode = "terminate"

                if decision.action == "stop":
                    self._answer_tools(reply, "Not run: the user stopped the conversation.")
                    return (yield from _end(Finished("stopped", "Stopped by the user.")))
                if decision.action == "feedback":
                    self._answer_tools(reply, "Not run: the user answered instead (see next).")
                    history.add(Message("user", "feedback", decision.text))
                    continue
                if proposal.final and decision.action == "run":
                    # Accepting a final message ends the conversation; any tool
                    # calls it made still need an answer for the next cell.
                    self._answer_tools(reply, "Not run: the conversation ended.")
                    return (
                        yield from _end(Finished(proposal.reason, FINISH_TEXT[proposal.reason]))
                    )
                if decision.action == "skip":
                    # decision.text: the loop refused the step (cut off, protected) and
                    # says why; it counts as a failed step, so the work goes on.
                    self._answer_tools(
                        reply, f"Not run: {decision.text}" if decision.text else SKIPPED_TOOL
                    )
                    if not reply.tool_calls:
                        history.add(Message("user", "output", decision.text or SKIPPED))
                    if (proposal.final and not decision.text) or turns >= self.max_turns:
                        reason = proposal.reason or "max_turns"  # a refusal at the limit too
                        return (yield from _end(Finished(reason, FINISH_TEXT[reason])))
                    continue
                clean = yield from self._execute(proposal, decision, reply)
                ran = decision.edited if decision.edited is not None else proposal.blocks
                self._steps.finished(ran, step, clean)
                if proposal.signs_off and clean:
                    return (yield from _end(Finished("terminated", FINISH_TEXT["signed_off"])))
                if proposal.signs_off and turns >= self.max_turns:  # failed at the limit
                    return (yield from _end(Finished("max_turns", FINISH_TEXT["max_turns"])))
        except KeyboardInterrupt:
            self._close_tool_calls("Not run: the user interrupted.")
            history.add(Message("user", "output", "(The user interrupted the conversation here.)"))
            return (
                yield from _end(
                    Finished("interrupted", "Interrupted; the conversation so far is kept.")
                )
            )
        except ChatError as error:
            if not answered:
                # Nothing happened: re-running the cell is clean, and takes the same step.
                history.truncate(before)
                history.steps_taken = steps_before
            return (yield from _end(Finished(error.ends_as, str(error))))

    # -- pieces of the loop ----------------------------------------------------------

    def _window(self, messages: list[dict[str, Any]]) -> int | None:
        """The context window to fit this request to, or None (nothing to fit to)."""
        return request_window(self.chat, self.history, self.context_window, messages)

    def _fitted(
        self, window: int | None, tools: list[dict[str, Any]] | None
    ) -> tuple[list[dict[str, Any]], str]:
        return fitted_request(self.history, window, self.reply_room, tools)

    def _ask(self, step: int) -> Generator[Event, Any, ChatReply]:
        tools = [RUN_PYTHON_TOOL, RUN_SHELL_TOOL] if self.use_tools else None
        window = self._window(self.messages)
        try:
            reply = yield from self._request(step, window, tools)
        except ContextWindowExceeded as error:
            # Trim harder and ask once more: to 0.8 of the size the server named, else to
            # 0.6 of what was just sent (a server that names no size may count tokens
            # quite differently). The size that worked holds for the rest of the history.
            if error.window:
                smaller = int(error.window * 0.8)
            else:
                sent = estimate_tokens(self._fitted(window, tools)[0]) + tools_tokens(tools)
                smaller = int(min(window or sent, sent) * 0.6)
            smaller = max(smaller, 256)
            try:
                reply = yield from self._request(step, smaller, tools)
            except ContextWindowExceeded as again:
                raise ChatError(still_too_long(str(again))) from None
            self.history.window_cap = smaller
        self.history.add(Message.reply(reply))
        self.replies.append(reply)
        return reply

    def _request(
        self, step: int, window: int | None, tools: list[dict[str, Any]] | None
    ) -> Generator[Event, Any, ChatReply]:
        messages, note = self._fitted(window, tools)
        yield RequestSent(step, tuple(messages), note, window)
        reply: ChatReply | None = None
        # Thinking is never code: inline <think> is split off here, whatever the client
        # (the wire splits it too; a scripted client, the cache or a replay may not).
        inline = ThinkingSplitter()
        for item in (yield from self._opened(step, list(messages), tools)):
            if isinstance(item, ThinkingDelta):
                if item.text:
                    yield ReplyDelta(step, item.text, thinking=True)
            elif isinstance(item, str):
                for thinking, text in inline.feed(item):
                    yield ReplyDelta(step, text, thinking=thinking)
            else:
                reply = item
        for thinking, text in inline.end():
            yield ReplyDelta(step, text, thinking=thinking)
        if reply is None:
            raise ChatError("the model returned no reply")
        return without_thinking(reply)

    def _opened(
        self, step: int, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> Generator[Event, Any, Iterator[Any]]:
        """The chat's stream, its first item read: a spent budget (nothing was sent) is
        asked about where someone can answer, and the request sent again with more."""
        while True:
            stream = iter(self.chat.stream(messages, tools=tools))
            try:
                first = next(stream)
            except StopIteration:
                return iter(())
            except BudgetSpent as spent:
                if not self.attended or spent.extend is None:
                    raise
                decision = yield BudgetAsked(step, str(spent), spent.unit, spent.size)
                if not isinstance(decision, Decision) or decision.action != "more":
                    raise ChatStopped(f"Stopped: {spent}") from None
                spent.extend(decision.more)
                continue
            return itertools.chain([first], stream)

    def _blocks(self, reply: ChatReply) -> tuple[CodeBlock, ...]:
        if reply.tool_calls:
            return tuple(tool_block(call) for call in reply.tool_calls)
        blocks = proposed_blocks(reply.content, self._last_shown())
        # A fence holding only the marker is the sign-off, written as code: not a step.
        marker = self.termination_marker
        return tuple(b for b in blocks if not marker or b.code.strip(" \n`*_.!\"'") != marker)

    def _last_shown(self) -> str:
        """What the model was told since its previous reply (a step's report), as text;
        the newest message is the reply itself."""
        shown: list[str] = []
        for message in reversed(self.history.records[:-1]):
            if message.role not in ("user", "tool"):
                break
            shown.append(message.text)
        return "\n".join(reversed(shown))

    def _decide(self, proposal: Proposal) -> Generator[Event, Any, tuple[Decision, bool]]:
        automatic = unasked(
            proposal,
            mode=self.mode,
            attended=self.attended,
            steps=self._steps,
            turns_left=self._turns_left,
        )
        if automatic is not None:
            return (automatic, True)
        decision = yield ReviewRequested(proposal)
        if not isinstance(decision, Decision):
            raise TypeError(f"expected a Decision for ReviewRequested, got {decision!r}")
        return (decision, False)

    def _execute(
        self, proposal: Proposal, decision: Decision, reply: ChatReply
    ) -> Generator[Event, Any, bool]:
        """Run the blocks; True when every one ran cleanly."""
        blocks = decision.edited if decision.edited is not None else proposal.blocks
        reports: list[str] = []
        if decision.edited_differs(proposal):
            diff = edit_diff(proposal.blocks, blocks)
            reports.append("The user edited the code before running it:\n" + fence(diff, "diff"))
        tool_results: dict[str, str] = {}
        images: list[tuple[str, bytes]] = []
        failed = False
        try:
            for index, block in enumerate(blocks):
                outcome = None
                if failed:
                    text = "Not run, because an earlier block failed."
                elif not block.runnable:
                    text = (
                        f"Not run: `{block.language}` blocks cannot be run here. "
                        "Use a ```python or ```sh block."
                    )
                    failed = True
                else:
                    outcome = self.executor.run(block, step=proposal.step)
                    text = step_report(outcome) + ("\n(interrupted)" if outcome.interrupted else "")
                    self._injected = self._injected or addressed_to_assistant(text)
                    self._previews |= elided_previews(text)
                    failed = not outcome.ok
                    if failed and not outcome.interrupted:
                        self._steps.failed(blocks, proposal.step, outcome)
                    images.extend(outcome.images)
                last = index == len(blocks) - 1
                if last and not failed and not proposal.signs_off:
                    text += "\n" + DONE_HINT
                if len(blocks) > 1:
                    text = f"Block {index + 1} of {len(blocks)} ({block.language}): {text}"
                # Kept before the event is handed on: an interrupt there must not lose it.
                reports.append(text)
                if block.tool_call_id:
                    tool_results[block.tool_call_id] = text
                if outcome is not None:
                    yield CodeRan(proposal.step, index, block, outcome)
                    if outcome.interrupted:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            self._record_results(reply, reports, tool_results, images, "Not run: interrupted.")
            raise
        self._record_results(reply, reports, tool_results, images, "Not run.")
        return not failed and bool(blocks)

    def _record_results(
        self,
        reply: ChatReply,
        reports: list[str],
        tool_results: dict[str, str],
        images: list[tuple[str, bytes]],
        not_run: str,
    ) -> None:
        if reply.tool_calls:
            for call in reply.tool_calls:
                result = tool_results.get(call.id, not_run)
                self.history.add(Message("tool", "output", result, tool_call_id=call.id))
            reports = [r for r in reports if r.startswith("The user edited")]
        if reports or images:
            content = user_content("\n\n".join(reports), images)
            self.history.add(Message("user", "output", content))

    def _answer_tools(self, reply: ChatReply, text: str) -> None:
        # The API rejects a history where a tool call has no tool message after it.
        for call in reply.tool_calls:
            self.history.add(Message("tool", "output", text, tool_call_id=call.id))

    def _close_tool_calls(self, text: str) -> None:
        """Answer the last reply's tool calls that have no tool message yet (an interrupt
        between the reply and its steps), so the next request is a valid history."""
        for call_id in self.history.open_tool_calls():
            self.history.add(Message("tool", "output", text, tool_call_id=call_id))

    def reset(self) -> None:
        self.history.reset()


def _end(finished: Finished) -> Generator[Event, Any, Finished]:
    """Yield the conversation's end; an interrupt thrown in while it is shown changes
    nothing (the drivers' contract): the end stands."""
    with suppress(KeyboardInterrupt):
        yield finished
    return finished
