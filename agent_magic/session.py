"""The composition root: one :class:`Session` per kernel, one fresh conversation per cell.

A session owns what lives as long as the kernel: the conversation's :class:`History`,
the :class:`~agent_magic.transcript.Recorder` (one per conversation, made here only),
the watch on the user's errors for ``%agent fix``, and the UI that showed the last cell.
:meth:`Session.start` builds a cell from its :class:`~agent_magic.plan.CellPlan` (the
plan decides; the session only assembles): the chat client (live, wrapped so every
message is redacted, maybe cached; or the replay), the executor, the recorder's settings
and a fresh :class:`~agent_magic.conversation.Conversation` over the history. The cell's
one :class:`~agent_magic.secrets.Redactor` serves the requests and the recording, and
so the log and the export, which read the recording's records.

Also here: the line commands' work (reset, log, usage, export). Not here: traits and
argument parsing (:mod:`.magic`), deciding anything about the cell (:mod:`.plan`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

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
from .plan import CellPlan, Frontend
from .transcript import (
    CachedChat,
    Recorder,
    RedactingChat,
    Replay,
    cell_redactor,
    open_store,
    record_events,
    recording_path,
    render_log,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


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
        self._make_executor = make_executor

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
        from .ui.kernel import frontend

        return frontend(self.shell)  # type: ignore[return-value]

    def reset(self) -> None:
        """``%agent reset``: the same objects, emptied."""
        self.history.reset()
        self.recorder.reset()

    # -- a cell ---------------------------------------------------------------------------

    def start(self, plan: CellPlan) -> tuple[Steps, Handler]:
        """The cell's steps and the handler that records and shows them."""
        if plan.new:
            self.forget()
        task = plan.task
        if plan.fix:
            task = fix_task(self.shell, task, last_error(self.errors))
        ui = self._face(plan)
        self.last_ui = ui
        store = open_store(recording_path(plan.recording))
        recorder = self.recorder
        replay: Replay | None = None
        chat: ChatClient
        if plan.replay:  # never builds a live client
            chat = replay = Replay(store, recorder.keyer)
            redactor = cell_redactor(namespace=self.shell.user_ns)
        else:
            live = self._chat(plan)
            redactor = cell_redactor(live, namespace=self.shell.user_ns)
            chat = RedactingChat(live, redactor)
            if plan.seed is not None:
                chat = CachedChat(chat, store, recorder.keyer, plan.seed)
        conversation = Conversation(
            chat,
            self._executor(plan),
            mode=plan.loop_mode,
            max_turns=plan.max_turns,
            system_prompt=plan.system_prompt,
            termination_marker=plan.termination_marker,
            use_tools=plan.tools,
            history=self.history,
            protected=DEFAULT_PROTECTED | plan.protected,
            transform=getattr(self.shell, "transform_cell", None),
            attended=plan.attended,
            context_window=plan.context_window,
        )
        context = self._context(plan) if plan.context else ""
        task = self._interpolate(task)
        recorder.begin(
            store=store,
            write=not plan.replay,
            model=chat.model,
            params=getattr(chat, "params", None),
            seed=plan.seed,
            tools=[RUN_PYTHON_TOOL, RUN_SHELL_TOOL] if plan.tools else None,
            redactor=redactor,
            mode=plan.mode,
        )
        return conversation.run(task, context=context), record_events(ui, recorder, replay)

    @staticmethod
    def conclude(finished: Finished) -> None:
        """How the cell ends for IPython: an error or an interrupt is one line."""
        if finished.reason in ("error", "interrupted"):
            raise UsageError(f"agent: {finished.message}")

    # -- the pieces -----------------------------------------------------------------------

    def _chat(self, plan: CellPlan) -> ChatClient:
        from .llm import ConfigError, OpenAIChat, resolve_endpoints

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
        return OpenAIChat(
            endpoints,
            stream=plan.stream,
            timeout=plan.timeout,
            max_retries=plan.max_retries,
            retry_budget=plan.retry_budget,
            params=dict(plan.params),
        )

    def _executor(self, plan: CellPlan) -> Executor:
        if self._make_executor is not None:
            return self._make_executor(**plan.executor_options())
        from .executor import IPythonExecutor

        return IPythonExecutor(self.shell, **plan.executor_options())

    def _face(self, plan: CellPlan) -> Handler:
        if plan.face == "terminal":
            from .ui.terminal import TerminalUI

            return TerminalUI()
        from .ui.widget import NotebookUI

        return NotebookUI(interactive=plan.interactive, review_timeout=plan.review_timeout)

    def _context(self, plan: CellPlan) -> str:
        from .context import summarize_namespace

        summary = summarize_namespace(
            self.shell.user_ns, budget=plan.context_budget, hidden=self.shell.user_ns_hidden
        )
        return f"Variables in the session now:\n{summary}"

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

    def log(self) -> tuple[str, str]:
        return render_log(self.recorder.transcript())

    def usage(self) -> tuple[str, str]:
        try:
            from .llm import usage_table  # the llm helper's, once it lands
        except ImportError:
            from .usage import usage_table
        return usage_table(self.history.replies)

    def export(self, path: str) -> str:
        """Write the conversation as a notebook; the one line that says so."""
        records = self.recorder.transcript()
        if not records:
            raise UsageError("agent: nothing to export yet; run a %%agent cell first")
        from .export import write_notebook

        path = os.path.expanduser(path)
        try:
            notebook = write_notebook(records, path)
        except OSError as error:
            raise UsageError(
                f"agent: cannot write {path} ({error.strerror or error}); "
                "choose a folder you can write to"
            ) from None
        return f"agent: wrote {path} ({len(notebook.cells)} cells)"
