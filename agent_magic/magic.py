"""``%%agent`` and ``%agent``: settings (traits), argument parsing and delegation only.

Each cell is planned by :func:`.plan.plan_cell` (flags + traits -> a frozen plan) and
built by the kernel's :class:`.session.Session` (history, recorder, clients). The work
lives elsewhere: the loop in :mod:`.conversation`, the model client in :mod:`.llm`,
running code in :mod:`.executor`, what the model is told in :mod:`.context`, the
recording in :mod:`.transcript`, the faces in :mod:`.ui`, ``--fix`` in :mod:`.fix`.

A new per-cell flag: a trait below, an ``@argument`` on :meth:`AgentMagics.agent`, a
:class:`.plan.CellPlan` field set in :func:`.plan.plan_cell`, and its use in
:meth:`.session.Session.start` (or the piece it builds).
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .defaults import MODES
from .fix import ErrorWatch
from .integrity import protect, restore
from .settings import AgentSettings

if TYPE_CHECKING:
    from .conversation import Finished, Handler
    from .session import Session

# %load_ext imports this module and nothing heavy: the loop, the session, the recording
# and the model client are imported by the first cell that needs them (or, before that,
# by the warm-up thread, agent_magic.warmup).


@magics_class
class AgentMagics(Magics, AgentSettings):
    """``%%agent`` and ``%agent``; their settings are :class:`.settings.AgentSettings`'s
    traits (``%config AgentMagics.<name> = ...``)."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        # The post_run_cell hook %load_ext registers (for %agent fix), the Session's own.
        self.error_watch = ErrorWatch()
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The kernel's :class:`.session.Session`, built on first use (not at %load_ext)."""
        if self._session is None:
            from .session import Session

            # The bench and tests may replace ``_executor`` on the instance: looked up late.
            session = Session(self.shell, make_executor=lambda **o: self._executor(**o))
            session.errors = self.error_watch
            self._session = session
        return self._session

    @session.setter
    def session(self, session: Session) -> None:
        self._session = session

    # The kernel's history and recorder as tests and users reach them; assigning None
    # forgets the conversation (or starts a new recorder).
    history = property(lambda self: self.session.history, lambda self, _: self.session.forget())
    recorder = property(lambda self: self.session.recorder, lambda self, _: self.session.renew())
    last_ui = property(lambda self: self.session.last_ui, doc="The edge that showed the last cell.")

    # -- the magic ---------------------------------------------------------------------

    @magic_arguments()
    @argument("--model", "-m", help="Model for this cell (overrides AgentMagics.model).")
    @argument("--mode", choices=MODES, help="always | terminate | never (see AgentMagics.mode).")
    @argument("--max-turns", type=int, help="Most model replies in this cell.")
    @argument("--step-timeout", type=float, help="Seconds a step may run (0: no limit).")
    @argument("--max-tokens", type=int, help="Token budget for this cell (0: none).")
    @argument("--max-cost", type=float, help="Cost budget for this cell in US$ (0: none).")
    @argument("--base-url", help="OpenAI-compatible endpoint for this cell.")
    @argument(
        "--reasoning-effort",
        choices=("none", "minimal", "low", "medium", "high"),
        help="How hard a reasoning model thinks (AgentMagics.reasoning_effort).",
    )
    @argument("--new", action="store_true", help="Start a fresh conversation.")
    @argument("--no-stream", action="store_true", help="Wait for whole replies.")
    @argument(
        "--no-context",
        action="store_true",
        help="Send the task alone: no files, variables, earlier cells or Markdown.",
    )
    @argument("--tools", action="store_true", help="Use native tool calling for code.")
    @argument("--fix", action="store_true", help="Start from the last error in the notebook.")
    @argument("--images", action="store_true", help="Send displayed images to the model.")
    @argument("--seed", type=int, help="Cache replies under this seed (AgentMagics.seed).")
    @argument("--replay", action="store_true", help="Answer from the recording, offline.")
    @argument(
        "--protect",
        action="append",
        metavar="NAME",
        help="Ask before a step changes NAME, in every mode (repeatable).",
    )
    @argument(
        "--replay-replies",
        action="store_true",
        help="Answer from the recording, offline, but you decide each step.",
    )
    @argument(
        "command",
        nargs="*",
        help="Line form only: reset | log | usage | fix | undo | key | models | cells | "
        "context [TASK] | export PATH.",
    )
    @line_cell_magic
    def agent(self, line: str = "", cell: str | None = None) -> None:
        """Work on a task with a coding assistant; approved code runs in this kernel.

        Usage::

            %%agent [--model M] [--mode always|terminate|never] [--max-turns N] [--step-timeout S]
                    [--base-url URL] [--new] [--no-stream] [--no-context] [--tools] [--fix]
                    [--images] [--seed N] [--replay | --replay-replies] [--max-tokens N]
                    [--max-cost USD] [--protect NAME]
                    [--reasoning-effort none|minimal|low|medium|high]
            <the task, in words>

            %agent reset      forget the conversation
            %agent log        show the conversation so far
            %agent usage      tokens per call and in total, with cost where known
            %agent fix        ask the assistant to fix the last error
            %agent key        type the API key, unseen; kept in this kernel's memory only
                              (never recorded or saved), for endpoints without a key
            %agent models     the models the endpoint lists; * marks the one in use
            %agent cells      the code that ran, in order, into a new cell below
            %agent context [TASK]
                              exactly what the next request carries after its task (for
                              TASK, when given: the files it names are previewed)
            %agent undo       put back the names the last step created, rebound or
                              deleted (not files or other side effects)
            %agent export PATH.ipynb
                              the conversation as a clean notebook: code cells with the
                              code that ran and its outputs, provenance in metadata

        Each reply's code is shown for review: run it (Enter / Run), edit it first
        (widget), run it and the rest of the cell's steps without asking, as --mode
        terminate would (``all`` / Run all; recorded, so --replay repeats it), skip it,
        stop, or answer in words instead. What the code prints,
        returns or raises goes back to the model until it says TERMINATE.
        In JupyterLab, Notebook 7 or VS Code (ipykernel >= 7.4) the review is a widget and
        the cell waits for the click; the kernel's interrupt button stops it. Without a
        widget frontend (nbconvert, papermill) use --mode never or --replay.
        A second %%agent cell continues the same conversation; --new starts over.
        ``--max-tokens N`` / ``--max-cost USD`` (and AgentMagics.session_max_tokens /
        session_max_cost across cells) hold the request after the budget is spent: the
        cell asks whether to go on with more (Enter / Continue: as much again) or stop;
        headless it stops in one line. The review shows what was spent so far.

        Reasoning models: ``--reasoning-effort low|medium|high`` (AgentMagics.
        reasoning_effort; ``none`` turns thinking off where the server takes it, as Ollama
        does) is sent as reasoning_effort (chat) or reasoning.effort (Responses). A model
        served by the Responses API only (gpt-5-codex, o3-pro...) is asked there by
        itself after the endpoint's first 404 says so (AgentMagics.api = 'auto' | 'chat' |
        'responses' chooses). ``%agent usage`` shows reasoning tokens and, for models with
        a known price (genai-prices, AgentMagics.prices), the cost.

        While the model works the cell says so, at least once a second: "waiting for the
        model 3 s", "thinking 12 s" (the thinking readable, folded), "writing 20 s".
        A reasoning model's thinking (``<think>...</think>``, ``reasoning_content``,
        ``reasoning``) is never code: nothing in it is proposed or run, it is never sent
        back to the model, and ``%agent log`` shows it.

        What is sent with a task (``%agent context [TASK]`` shows exactly that; ``--no-context``
        sends the task alone): a preview of each file the task names (size, encoding,
        delimiter, header and first lines; never the whole file, nothing outside the
        working directory unless the path is absolute), your variables, the code of the
        cells run before this one, and the notebook's Markdown when the kernel knows its
        notebook, within AgentMagics.context_budget characters and with secrets hidden.

        Safety: a step running longer than ``--step-timeout S`` (600 s) is interrupted,
        the kernel kept; a reply cut off by the token limit never runs unseen; a step that
        would change a protected name (get_ipython, In, Out, ... and ``--protect NAME``)
        always asks, and so does code holding invisible or bidirectional-control characters
        (shown escaped in the review); unattended, code that already ran in the cell is not
        run again, nor code that copies the session's shorthand (a cut mark, a preview's
        ``[1, 2, ...]``); after output that addresses the assistant ("ignore previous
        instructions", ``system: ...``) the next step is asked (headless: refused), the line
        quoted; secrets (keys, tokens, secret-named variables, and pieces of 12+ characters
        of their values) are hidden from the model, the recording, the log and the cell;
        ``%agent undo`` puts back what the
        last step rebound. Local servers: set AgentMagics.base_url, model and, if the
        server does not say, context_window (requests are fitted to it).

        Every conversation is recorded as it happens in ``agent-recording.jsonl`` beside
        the notebook (AgentMagics.recording): requests, replies, decisions, outputs; never
        a key. ``--seed N`` answers a request asked before with the same seed from that
        file instead of calling the model. ``--replay`` (AgentMagics.replay, or
        AGENT_MAGIC_REPLAY=1 for a whole nbconvert/papermill run) answers every request
        and review from it, offline and without a key; if a request differs from the
        recording (task, namespace or a step's output changed) the cell stops, naming
        the step. Share the notebook and that one file, and it re-runs anywhere.
        ``--replay-replies`` (AgentMagics.replay_replies, AGENT_MAGIC_REPLAY=replies)
        plays the recorded replies but leaves each review to you: try the widget without
        a key; where your decision leads off the recording, the cell ends (not an error)
        with one line saying how to go on with a model.

        Examples::

            %%agent --mode terminate
            Load sales.csv into df and plot revenue per month.

            %config AgentMagics.model = "llama3.1"
            %config AgentMagics.base_url = "http://localhost:11434/v1"

            %%agent --seed 42           # re-running the cell costs nothing
            %agent export analysis.ipynb

            AGENT_MAGIC_REPLAY=1 jupyter nbconvert --to notebook --execute shared.ipynb

        Every setting is a traitlet: see ``%config AgentMagics``.
        """
        with _intact():
            if cell is None:
                return self._line_command(line)
            from .conversation import drive

            steps, handler = self._start(line, cell)
            try:
                finished = drive(steps, handler)
            finally:
                steps.close()
                self.session.recorder.flush()  # what the cell's end did not write
            self._conclude(finished)
        return None

    async def agent_async(self, line: str, cell: str) -> None:
        """The ``%%agent`` cell as a coroutine, so a widget can wait with ``await``.

        A notebook kernel rewrites ``%%agent`` cells into an await of this (see
        :mod:`agent_magic.ui.frontend`); like IPython does for magics, ``{var}`` and
        ``$var`` in the line are expanded first.
        """
        from .conversation import adrive
        from .ui.frontend import interrupts_raise

        with _intact():
            line = self.shell.var_expand(line, depth=1) if self.shell is not None else line
            steps, handler = self._started(line, cell)
            try:
                finished = await adrive(steps, handler, blocking=interrupts_raise)
            finally:
                steps.close()
                self.session.recorder.flush()  # what the cell's end did not write
            self._conclude(finished)

    # -- delegation ------------------------------------------------------------------------

    def _started(self, line: str, cell: str) -> tuple[Any, Handler]:
        """``_start`` for an awaiting cell, where an interrupt raises as in the drive: the
        kernel's own handler would only schedule a cancellation for the cell's next await,
        which a cell in mode never does not have (the interrupt was lost, the cell ran)."""
        from .session import Interrupted
        from .ui.frontend import interrupts_raise

        try:
            with interrupts_raise():
                return self._start(line, cell, awaiting=True)
        except KeyboardInterrupt:
            raise Interrupted("agent: interrupted before anything was sent") from None

    def _start(self, line: str, cell: str, *, awaiting: bool = False) -> tuple[Any, Handler]:
        session = self.session  # first: imported through it, as the warm-up does
        from .plan import PlanError, plan_cell
        from .ui.sight import plan_for_sight

        args = parse_argstring(self.agent, line)
        frontend = session.frontend() if self.ui == "auto" else "terminal"
        try:
            plan = plan_cell(args, self, cell=cell, frontend=frontend, awaiting=awaiting)
            plan = plan_for_sight(plan, self.shell)  # no review inside %%capture
        except PlanError as error:
            raise UsageError(str(error)) from None
        return session.start(plan)

    def _conclude(self, finished: Finished) -> None:
        self.session.conclude(finished)

    def _replaying(self, args: Any) -> bool:
        from .plan import plan_cell

        plan = plan_cell(args, self, cell="(any task)", frontend="terminal")
        return plan.replay

    def _plan_for_command(self, args: Any, task: str = "-") -> Any:
        """The plan a cell with this line (and ``task``) would have: its model and endpoint
        for models, its context for context."""
        from .plan import PlanError, plan_cell

        try:
            return plan_cell(
                Namespace(**{**vars(args), "command": []}),
                self,
                cell=task or "-",
                frontend="terminal",
            )
        except PlanError as error:
            raise UsageError(str(error)) from None

    def _executor(self, **options: Any) -> Any:
        from .kernel.executor import IPythonExecutor

        return IPythonExecutor(self.shell, **options)

    def _log(self) -> tuple[str, str]:
        return self.session.log(self.max_display_chars)

    def _usage(self) -> tuple[str, str]:
        from .llm.prices import set_prices

        try:
            set_prices(self.prices)  # as set now, even before the next cell
        except ValueError as error:
            raise UsageError(f"agent: {error}") from None
        return self.session.usage()

    # -- %agent <command> ----------------------------------------------------------------

    def _line_command(self, line: str) -> None:
        args = parse_argstring(self.agent, line)
        command = args.command[0] if args.command else ""
        if command == "reset":
            self.session.reset()
            print("agent: conversation reset")
        elif command == "log":
            _display(*self._log())
        elif command == "usage":
            _display(*self._usage())
        elif command == "fix":
            return self.agent(line, "")  # a cell with no body: the plan reads "fix" as --fix
        elif command == "key":
            frontend = self.session.frontend() if self.ui == "auto" else _FRONTENDS[self.ui]
            said = self.session.key(frontend)
            if said:
                print(said)
        elif command == "models":
            print(self.session.models(self._plan_for_command(args)))
        elif command == "cells":
            print(self.session.cells())
        elif command == "undo":
            print(self.session.undo())
        elif command == "context":
            words = " ".join(args.command[1:])
            plan = self._plan_for_command(args, task=words)
            print(self.session.show_context(plan))
        elif command == "export":
            if len(args.command) != 2:
                raise UsageError("usage: %agent export PATH.ipynb")
            print(self.session.export(args.command[1], self.termination_marker))
        else:
            raise UsageError(
                "usage: %agent reset | log | usage | fix | undo | key | models | cells | "
                "context [TASK] | export PATH, or a %%agent cell with the task; see %agent?"
            )
        return None


_FRONTENDS = {"widget": "widgets", "terminal": "terminal"}  # AgentMagics.ui, as a frontend


@contextmanager
def _intact() -> Iterator[None]:
    """Before a command, put back what code in the kernel changed in the extension (and
    say so in one line); a failure that such a change caused mid-cell is that one line
    too, never a traceback."""
    said, whole = restore()
    if not whole:
        raise UsageError(said)
    if said:
        print(said, file=sys.stderr)
    try:
        yield
    except Exception as error:
        if isinstance(error, UsageError):
            raise
        said, _ = restore()
        if said:
            raise UsageError(said) from None
        raise


def _display(plain: str, markdown: str) -> None:
    from IPython.display import display

    display({"text/plain": plain, "text/markdown": markdown}, raw=True)


protect(AgentMagics)  # its methods are part of what a step may not change
