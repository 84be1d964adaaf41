"""``%%agent`` and ``%agent``: settings, argument parsing and wiring, nothing more.

The work lives elsewhere: the loop in :mod:`.conversation`, the model client in
:mod:`.llm`, running code in :mod:`.executor`, what the model is told about the
namespace in :mod:`.context`, and the two faces in :mod:`.ui`.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Enum, Float, Int, Unicode

from .conversation import (
    DEFAULT_SYSTEM_PROMPT,
    MODES,
    RUN_PYTHON_TOOL,
    RUN_SHELL_TOOL,
    ChatClient,
    Conversation,
    Event,
    Finished,
    adrive,
    drive,
)
from .llm import PRICES, ConfigError, OpenAIChat, cost, resolve_endpoints
from .transcript import RECORDING_NAME, Recorder, log_entry, replay_from_env

Handler = Callable[[Event], Any]


@magics_class
class AgentMagics(Magics):
    """Settings for ``%%agent``; set them with ``%config AgentMagics.<name> = ...``."""

    model = Unicode("gpt-4o-mini", help="Chat model name (or Azure deployment) to ask.").tag(
        config=True
    )
    mode = Enum(
        MODES,
        default_value="always",
        help="When to ask the human: 'always' before every step; 'terminate' only when the "
        "model wants to finish or the turn limit is reached; 'never' runs everything.",
    ).tag(config=True)
    max_turns = Int(10, help="Most model replies per %%agent cell.").tag(config=True)
    base_url = Unicode(
        None,
        allow_none=True,
        help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 for Ollama. "
        "Defaults to OPENAI_BASE_URL or api.openai.com.",
    ).tag(config=True)
    config_list = Unicode(
        None,
        allow_none=True,
        help="Endpoints to try in order: a JSON list or a path to a JSON file in AutoGen's "
        "OAI_CONFIG_LIST format ([{model, api_key, base_url, api_type, api_version}]). "
        "Defaults to the OAI_CONFIG_LIST environment variable.",
    ).tag(config=True)
    system_prompt = Unicode(DEFAULT_SYSTEM_PROMPT, help="The system message.").tag(config=True)
    termination_marker = Unicode(
        "TERMINATE", help="A reply ending with this word finishes the conversation."
    ).tag(config=True)
    stream = Bool(True, help="Stream replies as they are written.").tag(config=True)
    temperature = Float(None, allow_none=True, help="Sampling temperature.").tag(config=True)
    timeout = Float(120.0, help="Seconds before one model request times out.").tag(config=True)
    max_retries = Int(
        2,
        help="Retries per endpoint on 429/5xx/timeouts (the openai SDK's exponential backoff, "
        "honouring Retry-After) before the next endpoint is tried.",
    ).tag(config=True)
    max_output_chars = Int(
        8000, help="Most characters of a step's output sent to the model (head and tail kept)."
    ).tag(config=True)
    max_display_chars = Int(
        2_000_000, help="Most characters of a step's printed output shown in the notebook."
    ).tag(config=True)
    retry_budget = Float(
        300.0,
        help="Seconds an endpoint may take to start answering, its retries included; then "
        "the next config-list entry is tried, or the cell stops with the error. 0: no bound "
        "beyond timeout x (max_retries + 1).",
    ).tag(config=True)
    shell_timeout = Float(60.0, help="Seconds before an sh block is killed.").tag(config=True)
    context = Bool(True, help="Send a summary of the session's variables with each task.").tag(
        config=True
    )
    context_budget = Int(4000, help="Most characters of the namespace summary.").tag(config=True)
    use_tools = Bool(
        False,
        help="Offer the model run_python/run_shell tools (native tool calling) instead of "
        "asking for fenced code blocks. An endpoint that rejects tools is asked again "
        "without them, and the fenced blocks in its replies run as usual.",
    ).tag(config=True)
    send_images = Bool(
        False,
        help="Send images a step displays (e.g. matplotlib plots), downscaled, to the model. "
        "Only for models that accept images.",
    ).tag(config=True)
    review_timeout = Float(
        3600.0, help="Seconds a widget waits for a decision before stopping."
    ).tag(config=True)
    ui = Enum(
        ("auto", "widget", "terminal"),
        default_value="auto",
        help="How reviews are asked: 'auto' picks the widget in a notebook frontend "
        "(JupyterLab, Notebook 7, VS Code on ipykernel >= 7.4), input() in a terminal or "
        "an older kernel, and fails closed in a headless run; 'widget' or 'terminal' force one.",
    ).tag(config=True)
    headless = Enum(
        ("error", "never"),
        default_value="error",
        help="Without a widget frontend or terminal (nbconvert, nbclient, papermill), "
        "modes that ask either fail at once ('error') or run as mode 'never'.",
    ).tag(config=True)
    recording = Unicode(
        RECORDING_NAME,
        help="The transcript of every conversation, which --seed and --replay answer from: "
        "a JSON Lines file, relative to the kernel's working directory (the notebook's "
        "folder in Lab, nbconvert and nbclient). Empty: record nothing.",
    ).tag(config=True)
    seed = Int(
        None,
        allow_none=True,
        help="Cache replies: a request (model, messages, parameters) asked again with the "
        "same seed gets its recorded reply without calling the model. None: no cache.",
    ).tag(config=True)
    replay = Bool(
        False,
        help="Answer every request from the recording and repeat the recorded decisions, "
        "never calling a model; a request the recording lacks stops the cell. "
        "AGENT_MAGIC_REPLAY=1 (or 0) in the environment overrides this for a whole run.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.conversation: Conversation | None = None
        self.recorder: Recorder | None = None
        self.last_ui: Handler | None = None  # the edge that showed the last cell (tests, debugging)

    # -- the magic ---------------------------------------------------------------------

    @magic_arguments()
    @argument("--model", "-m", help="Model for this cell (overrides AgentMagics.model).")
    @argument("--mode", choices=MODES, help="always | terminate | never (see AgentMagics.mode).")
    @argument("--max-turns", type=int, help="Most model replies in this cell.")
    @argument("--base-url", help="OpenAI-compatible endpoint for this cell.")
    @argument("--new", action="store_true", help="Start a fresh conversation.")
    @argument("--no-stream", action="store_true", help="Wait for whole replies.")
    @argument("--no-context", action="store_true", help="Do not send the namespace summary.")
    @argument("--tools", action="store_true", help="Use native tool calling for code.")
    @argument("--fix", action="store_true", help="Start from the last error in the notebook.")
    @argument("--images", action="store_true", help="Send displayed images to the model.")
    @argument("--seed", type=int, help="Cache replies under this seed (AgentMagics.seed).")
    @argument("--replay", action="store_true", help="Answer from the recording, offline.")
    @argument(
        "command",
        nargs="*",
        help="Line form only: reset | log | usage | fix | export PATH.",
    )
    @line_cell_magic
    def agent(self, line: str = "", cell: str | None = None) -> None:
        """Work on a task with a coding assistant; approved code runs in this kernel.

        Usage::

            %%agent [--model M] [--mode always|terminate|never] [--max-turns N]
                    [--base-url URL] [--new] [--no-stream] [--no-context] [--tools] [--fix]
                    [--images] [--seed N] [--replay]
            <the task, in words>

            %agent reset      forget the conversation
            %agent log        show the conversation so far
            %agent usage      tokens per call and in total, with cost where known
            %agent fix        ask the assistant to fix the last error
            %agent export PATH.ipynb
                              the conversation as a clean notebook: code cells with the
                              code that ran and its outputs, provenance in metadata

        Each reply's code is shown for review: run it (Enter / Run), edit it first
        (widget), skip it, stop, or answer in words instead. What the code prints,
        returns or raises goes back to the model until it says TERMINATE.
        In JupyterLab, Notebook 7 or VS Code (ipykernel >= 7.4) the review is a widget and
        the cell waits for the click; the kernel's interrupt button stops it. Without a
        widget frontend (nbconvert, papermill) use --mode never or --replay.
        A second %%agent cell continues the same conversation; --new starts over.

        Every conversation is recorded as it happens in ``agent-recording.jsonl`` beside
        the notebook (AgentMagics.recording): requests, replies, decisions, outputs; never
        a key. ``--seed N`` answers a request asked before with the same seed from that
        file instead of calling the model. ``--replay`` (AgentMagics.replay, or
        AGENT_MAGIC_REPLAY=1 for a whole nbconvert/papermill run) answers every request
        and review from it, offline and without a key; if a request differs from the
        recording (task, namespace or a step's output changed) the cell stops, naming
        the step. Share the notebook and that one file, and it re-runs anywhere.

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
        if cell is None:
            return self._line_command(line)
        steps, handler = self._start(line, cell)
        try:
            finished = drive(steps, handler)
        finally:
            steps.close()
        self._conclude(finished)

    async def agent_async(self, line: str, cell: str) -> None:
        """The ``%%agent`` cell as a coroutine, so a widget can wait with ``await``.

        A notebook kernel rewrites ``%%agent`` cells into an await of this (see
        :mod:`agent_magic.ui.kernel`); like IPython does for magics, ``{var}`` and
        ``$var`` in the line are expanded first.
        """
        from .ui.kernel import interrupts_raise

        line = self.shell.var_expand(line, depth=1) if self.shell is not None else line
        steps, handler = self._start(line, cell, awaiting=True)
        try:
            finished = await adrive(steps, handler, blocking=interrupts_raise)
        finally:
            steps.close()
        self._conclude(finished)

    # -- pieces --------------------------------------------------------------------------

    def _start(self, line: str, cell: str, *, awaiting: bool = False) -> tuple[Any, Handler]:
        args = parse_argstring(self.agent, line)
        if args.command[:1] == ["fix"] and not cell.strip():  # %agent fix [what to do]
            args.fix, args.command = True, args.command[1:]
        if args.max_turns is not None and args.max_turns < 1:
            raise UsageError("agent: --max-turns must be at least 1")
        if args.command and not args.fix:
            raise UsageError(
                f"unexpected {' '.join(args.command)!r} on the %%agent line; "
                "put the task in the cell body"
            )
        task = cell.strip()
        if args.fix:
            task = task or " ".join(args.command)  # %agent fix <what to do>
            task = self._fix_task(task)
        if not task:
            raise UsageError("%%agent needs a task: write it in the cell body below the magic")
        mode = args.mode or self.mode
        replay = self._replaying(args)
        # In replay the recording answers every review, so nobody needs to be there.
        ui = self._ui("never" if replay else mode, awaiting)
        if isinstance(ui, str):  # a headless run that cannot ask
            if self.headless != "never":
                raise UsageError(ui)
            mode = "never"
            ui = self._ui(mode, awaiting)
        self.last_ui = ui
        chat = None if replay else self._chat(args)  # replay never builds a live client
        conversation = self._conversation(args)
        conversation.chat = chat
        conversation.executor = self._executor(images=args.images or self.send_images)
        conversation.mode = mode
        conversation.max_turns = args.max_turns if args.max_turns is not None else self.max_turns
        conversation.system_prompt = self.system_prompt
        conversation.termination_marker = self.termination_marker
        conversation.use_tools = args.tools or self.use_tools
        context = "" if (args.no_context or not self.context) else self._context()
        task = self._interpolate(task)
        handler = self._transcribe(conversation, ui, args, mode=mode, replay=replay)
        return conversation.run(task, context=context), handler

    def _conclude(self, finished: Finished) -> None:
        if finished.reason == "error":
            raise UsageError(f"agent: {finished.message}")
        if finished.reason == "interrupted":
            raise UsageError(f"agent: {finished.message}")

    def _chat(self, args: Any) -> ChatClient:
        model = args.model or self.model
        try:
            endpoints = resolve_endpoints(
                model=model, base_url=args.base_url or self.base_url, config_list=self.config_list
            )
        except ConfigError as error:
            raise UsageError(f"agent: {error}") from None
        if args.model:
            endpoints = [e if e.model == model else _with_model(e, model) for e in endpoints]
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return OpenAIChat(
            endpoints,
            stream=self.stream and not args.no_stream,
            timeout=self.timeout,
            max_retries=self.max_retries,
            retry_budget=self.retry_budget,
            params=params,
        )

    def _conversation(self, args: Any) -> Conversation:
        if self.conversation is None or args.new:
            self.conversation = Conversation(chat=None, executor=None)  # type: ignore[arg-type]
            self.recorder = Recorder()
        return self.conversation

    def _replaying(self, args: Any) -> bool:
        if args.replay:
            return True
        from_env = replay_from_env()
        return self.replay if from_env is None else from_env

    def _transcribe(
        self, conversation: Conversation, ui: Handler, args: Any, *, mode: str, replay: bool
    ) -> Handler:
        """Record the cell, and answer it from the recording (replay) or the seeded cache."""
        from .export import OutputCapture
        from .transcript import (
            CachedChat,
            Replay,
            open_store,
            record_events,
            recording_path,
            secrets_from,
        )

        store = open_store(recording_path(self.recording))
        if self.recorder is None:
            self.recorder = Recorder()
        recorder = self.recorder
        seed = args.seed if args.seed is not None else self.seed
        secrets = secrets_from(chat=conversation.chat)
        answers = None
        if replay:
            answers = Replay(store, recorder.keyer)
            conversation.chat = answers
            conversation.mode = "always"  # every decision comes from the recording
        elif seed is not None:
            conversation.chat = CachedChat(conversation.chat, store, recorder.keyer, seed)
        outputs = OutputCapture(conversation.executor, self.shell)
        conversation.executor = outputs
        recorder.begin(
            store=store,
            write=not replay,
            model=conversation.chat.model,
            params=getattr(conversation.chat, "params", None),
            seed=seed,
            tools=[RUN_PYTHON_TOOL, RUN_SHELL_TOOL] if conversation.use_tools else None,
            secrets=secrets,
            outputs=outputs,
            mode=mode,
        )
        return record_events(ui, recorder, answers)

    def _executor(self, *, images: bool) -> Any:
        from .executor import IPythonExecutor

        return IPythonExecutor(
            self.shell,
            max_output_chars=self.max_output_chars,
            max_display_chars=self.max_display_chars,
            shell_timeout=self.shell_timeout,
            describe_changes=self.context,
            collect_images=images,
        )

    def _ui(self, mode: str, awaiting: bool) -> Handler | str:
        if self.ui == "auto":
            from .ui.kernel import frontend

            kind = frontend(self.shell)
        else:
            kind = "widgets" if self.ui == "widget" else "terminal"
        if kind == "terminal" or (kind == "widgets" and not awaiting):
            # No widget can wait here: a terminal, or a kernel where the cell was not
            # rewritten into an awaited coroutine. input() works in both.
            from .ui.terminal import TerminalUI

            return TerminalUI()
        if kind == "headless" and mode != "never":
            return (
                f"agent: --mode {mode} needs someone to answer, but this run has no widget "
                "frontend or terminal (nbconvert/nbclient/papermill); use --mode never, "
                "--replay to re-run from the recording, or "
                "%config AgentMagics.headless = 'never'"
            )
        from .ui.widget import NotebookUI

        return NotebookUI(interactive=mode != "never", review_timeout=self.review_timeout or None)

    def _context(self) -> str:
        from .context import summarize_namespace

        summary = summarize_namespace(
            self.shell.user_ns, budget=self.context_budget, hidden=self.shell.user_ns_hidden
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

    def _fix_task(self, task: str) -> str:
        error = getattr(sys, "last_value", None)
        if error is None:
            raise UsageError("agent: no error to fix yet; run the failing cell first")
        from .executor import strip_ansi

        tb = error.__traceback__
        source = ""
        frame_tb = tb
        while frame_tb is not None:
            filename = frame_tb.tb_frame.f_code.co_filename
            lines = linecache.getlines(filename)
            if lines and self.shell.compile.format_code_name(filename):
                source = "".join(lines)
                break
            frame_tb = frame_tb.tb_next
        try:
            text = "\n".join(
                self.shell.InteractiveTB.structured_traceback(type(error), error, tb, tb_offset=1)
            )
        except Exception:
            text = f"{type(error).__name__}: {error}"
        text = strip_ansi(text)[-6000:]
        request = task or "Fix this error."
        cell_text = (
            f"The cell that raised it:\n```python\n{source.strip()}\n```\n" if source else ""
        )
        return f"{request}\n\n{cell_text}The error:\n```\n{text}\n```"

    # -- %agent <command> ----------------------------------------------------------------

    def _line_command(self, line: str) -> None:
        args = parse_argstring(self.agent, line)
        command = args.command[0] if args.command else ""
        if command == "reset":
            if self.conversation is not None:
                self.conversation.reset()
            if self.recorder is not None:
                self.recorder.reset()
            print("agent: conversation reset")
        elif command == "log":
            _display(*self._log())
        elif command == "usage":
            _display(*self._usage())
        elif command == "fix":
            return self.agent(line, "")  # a cell with no body: _start reads "fix" as --fix
        elif command == "export":
            self._export(args.command[1:])
        else:
            raise UsageError(
                "usage: %agent reset | log | usage | fix | export PATH, or a %%agent cell "
                "with the task; see %agent?"
            )
        return None

    def _export(self, rest: list[str]) -> None:
        if len(rest) != 1:
            raise UsageError("usage: %agent export PATH.ipynb")
        records = self.recorder.transcript() if self.recorder else []
        if not records:
            raise UsageError("agent: nothing to export yet; run a %%agent cell first")
        from .export import write_notebook

        path = os.path.expanduser(rest[0])
        notebook = write_notebook(records, path)
        print(f"agent: wrote {path} ({len(notebook.cells)} cells)")

    def _log(self) -> tuple[str, str]:
        if self.recorder is not None and self.recorder.records:
            from .transcript import render_log

            return render_log(self.recorder.transcript())
        messages = self.conversation.messages if self.conversation else []
        if not messages:
            return ("(no conversation yet)", "*(no conversation yet)*")
        plain, markdown = [], []
        for message in messages:
            role = message["role"]
            if role == "system":
                continue
            content = message.get("content") or ""
            if isinstance(content, list):
                content = "\n".join(p.get("text", "[image]") for p in content)
            for call in message.get("tool_calls") or ():
                content += (
                    f"\n[tool call {call['function']['name']}] {call['function']['arguments']}"
                )
            text, shown = log_entry(role, content)
            plain.append(text)
            markdown.append(shown)
        return ("\n".join(plain), "\n\n---\n\n".join(markdown))

    def _usage(self) -> tuple[str, str]:
        replies = self.conversation.replies if self.conversation else []
        if not replies:
            return ("(no model calls yet)", "*(no model calls yet)*")
        rows = []
        total_in = total_out = 0
        total_cost: float | None = 0.0
        for i, reply in enumerate(replies, 1):
            usage = reply.usage
            p, c = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
            total_in, total_out = total_in + p, total_out + c
            price = cost(reply.model, usage)
            total_cost = None if price is None or total_cost is None else total_cost + price
            rows.append(
                (
                    str(i),
                    reply.model,
                    reply.endpoint,
                    str(p),
                    str(c),
                    str(p + c),
                    "" if price is None else f"${price:.5f}",
                    reply.source,
                )
            )
        rows.append(
            (
                "total",
                "",
                "",
                str(total_in),
                str(total_out),
                str(total_in + total_out),
                "" if total_cost is None else f"${total_cost:.5f}",
                "",
            )
        )
        head = ("call", "model", "endpoint", "prompt", "completion", "total", "cost", "source")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        plain = "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]
        )
        md = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
        md += "\n".join("| " + " | ".join(r) + " |" for r in rows)
        if total_cost is None:
            note = "Cost is shown for models with a known price: " + ", ".join(sorted(PRICES))
            plain += "\n" + note
            md += "\n\n" + note
        return (plain, md)


def _with_model(endpoint: Any, model: str) -> Any:
    from dataclasses import replace

    return replace(endpoint, model=model)


def _display(plain: str, markdown: str) -> None:
    from IPython.display import display

    display({"text/plain": plain, "text/markdown": markdown}, raw=True)


def load(shell: Any) -> None:
    from .llm import warm_import

    magics = AgentMagics(shell=shell)
    shell.register_magics(magics)
    # The SDK's ~0.8 s import and the client the traits point at, while the user reads.
    warm_import(
        base_url=magics.base_url or None,
        config_list=magics.config_list or None,
        timeout=magics.timeout,
        max_retries=magics.max_retries,
    )
    from .ui.kernel import install_cell_rewriter

    install_cell_rewriter(
        shell,
        "agent",
        "get_ipython().magics_manager.registry['AgentMagics'].agent_async",
    )


def unload(shell: Any) -> None:
    from .ui.kernel import uninstall_cell_rewriter

    uninstall_cell_rewriter(shell)
