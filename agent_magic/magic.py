"""``%%agent`` and ``%agent``: settings, argument parsing and wiring, nothing more.

The work lives elsewhere: the loop in :mod:`.conversation`, the model client in
:mod:`.llm`, running code in :mod:`.executor`, what the model is told about the
namespace in :mod:`.context`, and the two faces in :mod:`.ui`.
"""

from __future__ import annotations

import linecache
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
    ChatClient,
    Conversation,
    Event,
    Finished,
    adrive,
    drive,
)
from .llm import PRICES, ConfigError, OpenAIChat, cost, resolve_endpoints

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
    shell_timeout = Float(60.0, help="Seconds before an sh block is killed.").tag(config=True)
    context = Bool(True, help="Send a summary of the session's variables with each task.").tag(
        config=True
    )
    context_budget = Int(4000, help="Most characters of the namespace summary.").tag(config=True)
    use_tools = Bool(
        False,
        help="Offer the model run_python/run_shell tools (native tool calling) instead of "
        "asking for fenced code blocks.",
    ).tag(config=True)
    send_images = Bool(
        False,
        help="Send images a step displays (e.g. matplotlib plots), downscaled, to the model. "
        "Only for models that accept images.",
    ).tag(config=True)
    review_timeout = Float(
        3600.0, help="Seconds a widget waits for a decision before stopping."
    ).tag(config=True)
    headless = Enum(
        ("error", "never"),
        default_value="error",
        help="Without a widget frontend or terminal (nbconvert, nbclient, papermill), "
        "modes that ask either fail at once ('error') or run as mode 'never'.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.conversation: Conversation | None = None

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
    @argument(
        "command",
        nargs="*",
        help="Line form only: reset | log | usage | fix.",
    )
    @line_cell_magic
    def agent(self, line: str = "", cell: str | None = None) -> None:
        """Work on a task with a coding assistant; approved code runs in this kernel.

        Usage::

            %%agent [--model M] [--mode always|terminate|never] [--max-turns N]
                    [--base-url URL] [--new] [--no-stream] [--no-context] [--tools] [--fix]
                    [--images]
            <the task, in words>

            %agent reset      forget the conversation
            %agent log        show the conversation so far
            %agent usage      tokens per call and in total, with cost where known
            %agent fix        ask the assistant to fix the last error

        Each reply's code is shown for review: run it (Enter / Run), edit it first
        (widget), skip it, stop, or answer in words instead. What the code prints,
        returns or raises goes back to the model until it says TERMINATE.
        A second %%agent cell continues the same conversation; --new starts over.

        Examples::

            %%agent --mode terminate
            Load sales.csv into df and plot revenue per month.

            %config AgentMagics.model = "llama3.1"
            %config AgentMagics.base_url = "http://localhost:11434/v1"

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
        """The ``%%agent`` cell as a coroutine, so a widget can wait with ``await``."""
        steps, handler = self._start(line, cell, awaiting=True)
        try:
            finished = await adrive(steps, handler)
        finally:
            steps.close()
        self._conclude(finished)

    # -- pieces --------------------------------------------------------------------------

    def _start(self, line: str, cell: str, *, awaiting: bool = False) -> tuple[Any, Handler]:
        args = parse_argstring(self.agent, line)
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
        ui = self._ui(mode, awaiting)
        if isinstance(ui, str):  # a headless run that cannot ask
            if self.headless != "never":
                raise UsageError(ui)
            mode = "never"
            ui = self._ui(mode, awaiting)
        chat = self._chat(args)
        conversation = self._conversation(args)
        conversation.chat = chat
        conversation.executor = self._executor(images=args.images or self.send_images)
        conversation.mode = mode
        conversation.max_turns = args.max_turns or self.max_turns
        conversation.system_prompt = self.system_prompt
        conversation.termination_marker = self.termination_marker
        conversation.use_tools = args.tools or self.use_tools
        context = "" if (args.no_context or not self.context) else self._context()
        task = self._interpolate(task)
        return conversation.run(task, context=context), ui

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
            params=params,
        )

    def _conversation(self, args: Any) -> Conversation:
        if self.conversation is None or args.new:
            self.conversation = Conversation(chat=None, executor=None)  # type: ignore[arg-type]
        return self.conversation

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
        try:
            from .ui.kernel import frontend
        except ImportError:  # pragma: no cover - only while the ui package is incomplete
            kind = "terminal"
        else:
            kind = frontend(self.shell)
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

        return NotebookUI(interactive=mode != "never", review_timeout=self.review_timeout)

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

        return interpolate(task, self.shell.user_ns, hidden=self.shell.user_ns_hidden)

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
            print("agent: conversation reset")
        elif command == "log":
            _display(*self._log())
        elif command == "usage":
            _display(*self._usage())
        elif command == "fix":
            rest = line.replace("fix", "", 1)  # keep the other flags, e.g. --mode never
            return self.agent("--fix " + rest, "")
        else:
            raise UsageError(
                "usage: %agent reset | log | usage | fix, or a %%agent cell with the task; "
                "see %agent?"
            )
        return None

    def _log(self) -> tuple[str, str]:
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
            plain.append(f"--- {role}\n{content}")
            markdown.append(f"**{role}**\n\n{content}")
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
    magics = AgentMagics(shell=shell)
    shell.register_magics(magics)
    try:
        from .ui.kernel import install_cell_rewriter
    except ImportError:
        return
    install_cell_rewriter(
        shell,
        "agent",
        "get_ipython().magics_manager.registry['AgentMagics'].agent_async",
    )


def unload(shell: Any) -> None:
    try:
        from .ui.kernel import uninstall_cell_rewriter
    except ImportError:
        return
    uninstall_cell_rewriter(shell)
