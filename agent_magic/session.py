"""The composition root: one :class:`Session` per kernel, one fresh conversation per cell.

A session owns what lives as long as the kernel: the conversation's :class:`History`,
the :class:`~agent_magic.transcript.Recorder` (one per conversation, made here only),
the watch on the user's errors for ``%agent fix``, and the UI that showed the last cell.
:meth:`Session.start` builds a cell from its :class:`~agent_magic.plan.CellPlan` (the
plan decides; the session only assembles): the chat client (live, wrapped so every
message is redacted, maybe cached; or the replay), the executor, the recorder's settings
and a fresh :class:`~agent_magic.conversation.Conversation` over the history. The cell's
one :class:`~agent_magic.secrets.Redactor` serves the requests and the recording (and so
the log and the export, which read the recorder's records in memory) and the executor, which
hides secrets in what each step shows and refreshes the redactor from the namespace.
The live client counts into the cell's and the session's :class:`~agent_magic.budget.Budget`
(the session's lives as long as the kernel), which the review reads for its "so far" line.

Also here: the line commands' work (reset, log, usage, export, undo, key, models, cells),
and how a cell ends for IPython (:meth:`Session.conclude`: an error or an interrupt is said
once, in one line; the UIs leave it to that line). Not here: traits and argument parsing
(:mod:`.magic`), deciding anything about the cell (:mod:`.plan`), the held key
(:mod:`.apikey`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from .budget import Budget, BudgetedChat, spent_line
from .conversation import (
    RUN_PYTHON_TOOL,
    RUN_SHELL_TOOL,
    ChatClient,
    Conversation,
    Executor,
    Finished,
    Handler,
    History,
    Steps,
)
from .fix import ErrorWatch, fix_task, last_error
from .guard import DEFAULT_PROTECTED
from .integrity import baseline, protect
from .plan import CellPlan, Frontend
from .secrets import Redactor
from .text import DISPLAY_LIMIT
from .transcript import (
    CachedChat,
    Recorder,
    RedactingChat,
    Replay,
    Store,
    cell_redactor,
    open_store,
    record_events,
    render_log,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .guard import Undo
    from .llm import Endpoint

# Said once per kernel, at the start of the first --mode never cell that asks a model.
NEVER_NOTICE = (
    "agent: --mode never runs the model's code in this kernel without asking you first; "
    "stop it with the kernel's interrupt button (Ctrl-C in a terminal), or use "
    "--mode always to review each step"
)


class Session:
    """Per-kernel state, and the assembly of each cell from its plan."""

    def __init__(
        self, shell: InteractiveShell, *, make_executor: Callable[..., Executor] | None = None
    ) -> None:
        self.shell = shell
        self.history = History()
        self.recorder = Recorder()
        self.errors = ErrorWatch()
        self.last_ui: Handler | None = None  # the edge that showed the last cell
        self.budget = Budget("session")  # what the kernel's cells spent: reset keeps it
        self.told_never = False  # NEVER_NOTICE was said
        self._make_executor = make_executor
        # %agent undo: the last cell's executor keeps its last step's Undo; the one before
        # stays for a cell that ran no step.
        self._cell_executor: Executor | None = None
        self._earlier_undo: Undo | None = None

    # -- the conversation's lifetime ------------------------------------------------------

    def forget(self) -> None:
        """A new conversation: new history, new recorder (new conversation id)."""
        self.history = History()
        self.recorder = Recorder()

    def renew(self) -> None:
        """A new recorder for the same history (a new conversation id in the recording)."""
        self.recorder = Recorder()

    def frontend(self) -> Frontend:
        """Where this kernel's cells are shown: a widget frontend, a terminal, or nobody."""
        from .ui.frontend import frontend

        return frontend(self.shell)  # type: ignore[return-value]

    def reset(self) -> None:
        """``%agent reset``: the same objects, emptied."""
        self.history.reset()
        self.recorder.reset()

    # -- a cell ---------------------------------------------------------------------------

    def start(self, plan: CellPlan) -> tuple[Steps, Handler]:
        """The cell's steps and the handler that records and shows them."""
        from .llm.prices import set_prices

        set_prices(plan.prices)  # the user's prices, for this cell's budgets and usage
        if plan.new:
            self.forget()
        task = plan.task
        if plan.fix:
            task = fix_task(self.shell, task, last_error(self.errors))
        budget = Budget("cell", plan.max_tokens, plan.max_cost)
        self.budget.limit(plan.session_max_tokens, plan.session_max_cost)
        ui = self._face(plan, spent=lambda: spent_line(budget, self.budget))
        self.last_ui = ui
        recorder = self.recorder
        store = open_store(recorder.where(plan.recording))
        replay: Replay | None = None
        chat: ChatClient
        if plan.replay or plan.replay_replies:  # never builds a live client
            chat = replay = Replay(
                store, recorder.keyer, decisions=plan.replay, off=plan.replay_replies_off
            )
            redactor = self._redactor(plan)
        else:
            live = self._chat(plan)
            redactor = self._redactor(plan, live)
            # Inside the redaction: the estimates count what is sent; outside the cache:
            # a cached reply costs nothing.
            chat = RedactingChat(BudgetedChat(live, (budget, self.budget)), redactor)
            if plan.seed is not None:
                chat = CachedChat(chat, store, recorder.keyer, plan.seed)
        # The executor shares the redactor: it refreshes it from the namespace after each
        # step, so what the chat sends and the recorder writes hides new secrets too.
        executor = self._executor(plan, redactor)
        from .kernel.ipython import step_transform  # with the executor's kernel package

        self._earlier_undo = self.last_undo()
        self._cell_executor = executor
        conversation = Conversation(
            chat,
            executor,
            mode=plan.loop_mode,
            max_turns=plan.max_turns,
            system_prompt=plan.system_prompt,
            termination_marker=plan.termination_marker,
            use_tools=plan.tools,
            history=self.history,
            protected=DEFAULT_PROTECTED | plan.protected,
            transform=step_transform(self.shell),
            attended=plan.attended,
            context_window=plan.context_window,
        )
        context = self.context(plan)
        task = self._interpolate(task)
        recorder.begin(
            store=store,
            write=not (plan.replay or plan.replay_replies),
            model=chat.model,
            params=chat.params,
            seed=plan.seed,
            tools=[RUN_PYTHON_TOOL, RUN_SHELL_TOOL] if plan.tools else None,
            redactor=redactor,
            mode=plan.mode,
        )
        if (
            plan.mode == "never"
            and not (plan.replay or plan.replay_replies)
            and not self.told_never
        ):
            self.told_never = True  # under replay nothing new runs: the recording answers
            print(NEVER_NOTICE)
        deciding = None if plan.replay_replies else replay  # replies only: a person decides
        return conversation.run(task, context=context), record_events(ui, recorder, deciding)

    @staticmethod
    def conclude(finished: Finished) -> None:
        """How the cell ends for IPython: an error or an interrupt is one line."""
        # The UIs leave these ends to this one line; the record keeps the whole message.
        if finished.reason == "interrupted":
            raise Interrupted(f"agent: {_one_line(finished.message)}")
        if finished.reason == "error":
            raise UsageError(f"agent: {_one_line(finished.message)}")

    # -- the pieces -----------------------------------------------------------------------

    def _endpoints(self, plan: CellPlan) -> list[Endpoint]:
        from . import apikey
        from .llm import ConfigError, resolve_endpoints

        try:
            endpoints = resolve_endpoints(
                model=plan.model, base_url=plan.base_url, config_list=plan.config_list
            )
        except ConfigError as error:
            raise UsageError(f"agent: {error}") from None
        if plan.model_given:
            endpoints = [
                e if e.model == plan.model else replace(e, model=plan.model) for e in endpoints
            ]
        if plan.effort_given:  # the line's --reasoning-effort, over the config list's
            endpoints = [replace(e, reasoning_effort=None) for e in endpoints]
        return apikey.with_key(endpoints)  # the key from %agent key, where none is configured

    def _chat(self, plan: CellPlan) -> ChatClient:
        from .llm import OpenAIChat

        endpoints = self._endpoints(plan)
        return OpenAIChat(
            endpoints,
            stream=plan.stream,
            timeout=plan.timeout,
            max_retries=plan.max_retries,
            retry_budget=plan.retry_budget,
            params=dict(plan.params),
            api=plan.api,
        )

    def _redactor(self, plan: CellPlan, live: ChatClient | None = None) -> Redactor:
        """The cell's one redactor, under the user's rules (AgentMagics.secret_patterns and
        secret_names)."""
        from . import apikey

        return cell_redactor(
            live, self.shell.user_ns, values=[apikey.held()], rules=plan.secret_rules()
        )

    def _executor(self, plan: CellPlan, redactor: Redactor) -> Executor:
        if self._make_executor is not None:
            return self._make_executor(**plan.executor_options(), redactor=redactor)
        from .kernel.executor import IPythonExecutor

        return IPythonExecutor(self.shell, **plan.executor_options(), redactor=redactor)

    def _face(self, plan: CellPlan, spent: Callable[[], str] | None = None) -> Handler:
        if plan.face == "terminal":
            from .ui.terminal import TerminalUI

            return TerminalUI(
                marker=plan.termination_marker, spent=spent, limit=plan.max_display_chars
            )
        from .ui.widget import NotebookUI

        return NotebookUI(
            interactive=plan.interactive,
            review_timeout=plan.review_timeout,
            marker=plan.termination_marker,
            spent=spent,
            limit=plan.max_display_chars,
            # What ran in this cell: the recorder's records from here on.
            ran=functools.partial(self.recorder.ran, len(self.recorder.records)),
        )

    def context(self, plan: CellPlan) -> str:
        """What is sent after the cell's task (before redaction): the files the task
        names, the variables, the earlier cells, the notebook's Markdown, within the
        plan's budget; "" with ``--no-context``. ``%agent context`` shows this too."""
        if not plan.context:
            return ""
        from pathlib import Path

        from .context.block import Around, build_context

        history = getattr(self.shell, "history_manager", None)
        around = Around(
            self.shell.user_ns,
            self.shell.user_ns_hidden,
            getattr(history, "input_hist_raw", None),
            os.environ,
            Path.cwd(),
        )
        return build_context(
            plan.task, around, budget=plan.context_budget, sources=plan.context_sources
        )

    def show_context(self, plan: CellPlan) -> str:
        """``%agent context [task]``: what the next request would carry after its task,
        hidden as it would be sent (the cell's redactor, its endpoints' keys included)."""
        from types import SimpleNamespace

        if not plan.context:
            return "agent: nothing is sent with the task (context is off)"
        try:
            endpoints = self._endpoints(plan)
        except UsageError:
            endpoints = []
        redactor = self._redactor(plan, SimpleNamespace(endpoints=endpoints))  # type: ignore[arg-type]
        text = redactor.redact(self.context(plan))
        return f"agent: sent after the task:\n{text}" if text else "agent: nothing to send"

    def _interpolate(self, task: str) -> str:
        if "{" not in task:
            return task
        from .context import interpolate

        history = getattr(self.shell, "history_manager", None)
        return interpolate(
            task,
            self.shell.user_ns,
            hidden=self.shell.user_ns_hidden,
            inputs=getattr(history, "input_hist_raw", None),
        )

    # -- the line commands ----------------------------------------------------------------

    def last_undo(self) -> Undo | None:
        """What undoes the last step that ran in this session, if any."""
        latest = getattr(self._cell_executor, "last_undo", None)
        return latest if latest is not None else self._earlier_undo

    def undo(self) -> str:
        """``%agent undo``: put back the names the last step changed; what it did, in words."""
        undo = self.last_undo()
        if undo is None:
            return "agent: nothing to undo; no step has run in this session yet"
        report = undo.restore(self.shell.user_ns)
        if report.already_undone:
            return (
                "agent: nothing more to undo; the last step was already undone "
                "(only the last step can be undone)"
            )
        return f"agent: {report.text()}"

    def log(self, limit: int = DISPLAY_LIMIT) -> tuple[str, str]:
        """``%agent log``; each reply shown up to ``limit`` characters (the recording
        keeps it whole)."""
        return render_log(self.recorder.transcript(), limit=limit)

    def usage(self) -> tuple[str, str]:
        from .llm import usage_table

        replies = self.history.replies
        return usage_table(replies, estimates=[self.budget.estimate_for(r) for r in replies])

    def key(self, frontend: Frontend) -> str | None:
        """``%agent key``: ask for the key without echo; the line to print, if any.

        A notebook gets a password box (its Save says the rest); a terminal, getpass.
        """
        from . import apikey

        if frontend == "widgets":
            from IPython.display import display

            from .ui.boxes import KeyBox

            display(KeyBox(apikey.keep))
            return None
        if frontend == "headless":
            raise UsageError(
                "agent: %agent key needs someone to type the key, and this run has nobody; "
                "set OPENAI_API_KEY in its environment instead"
            )
        return apikey.ask()

    def models(self, plan: CellPlan) -> str:
        """``%agent models``: the endpoint's model list, the one in use marked."""
        from .llm import ChatError, list_models, shown_url

        endpoints = self._endpoints(plan)
        try:
            ids = list_models(endpoints, timeout=min(plan.timeout, 30.0))
        except ChatError as error:
            raise UsageError(f"agent: {error}") from None
        in_use = endpoints[0].model
        where = shown_url(endpoints[0].base_url) or endpoints[0].label.partition(" @ ")[2]
        lines = [f"agent: {len(ids)} model{'' if len(ids) == 1 else 's'} at {where} (* in use)"]
        lines += [f"{'*' if name == in_use else ' '} {name}" for name in ids]
        if in_use not in ids:
            lines.append(f"  ({in_use}, in use, is not in this list)")
        return "\n".join(lines)

    def cells(self) -> str:
        """``%agent cells``: the code that ran, in order, into the notebook; the line."""
        from .ui.cells import insert_cells, sources

        ran = self.recorder.ran()
        codes = sources(ran)
        if not insert_cells(self.shell, codes, [record.step for record in ran]):
            return "agent: nothing ran yet; run a %%agent cell first"
        count = sum(1 for code in codes if code.strip())
        where = "at the next prompt" if self.frontend() == "terminal" else "in a new cell below"
        told = f"{count} step{'' if count == 1 else 's'}"
        return f"agent: the code of {told} that ran is {where}"

    def export(self, path: str, marker: str = "TERMINATE") -> str:
        """Write the conversation as a notebook; the one line that says so."""
        records = self.recorder.transcript()
        if not records:
            raise UsageError("agent: nothing to export yet; run a %%agent cell first")
        from .export import write_notebook

        path = os.path.expanduser(path)
        try:
            notebook = write_notebook(records, path, marker)
        except OSError as error:
            raise UsageError(
                f"agent: cannot write {path} ({error.strerror or error}); "
                "choose a folder you can write to"
            ) from None
        return f"agent: wrote {path} ({len(notebook.cells)} cells)"


class Interrupted(Exception):
    """How an interrupted cell ends: one plain line, no "UsageError", no traceback.

    Still an exception, so the cell ends in error and *Run All* stops there, as it does
    after any interrupted cell. IPython shows what ``_render_traceback_`` returns
    instead of a traceback (its hook for exceptions that render themselves). Not a
    ``KeyboardInterrupt``: raised from an asyncio task, that one escapes the event loop.
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def _one_line(message: str) -> str:
    """The first line of ``message``, saying where the rest is when there is more."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else "the conversation ended with an error"
    return f"{lines[0]} (the whole message: %agent log)"


# What a step may not change (agent_magic.integrity): taken once per process as soon as
# the wiring is imported (by the warm-up after %load_ext, or the first command), so that
# it holds the originals before any cell can have changed them.
protect(Session, CellPlan, Conversation, History, Recorder, Store, Replay, Redactor)
baseline()
