"""Planning one ``%%agent`` cell: its flags and the settings in, a frozen plan out.

:func:`plan_cell` is pure: from the parsed line, the cell's words, the settings (the
``AgentMagics`` traits, or anything with the same attributes), the kind of frontend and
the environment, it decides everything the cell will do, once, into a :class:`CellPlan`.
The mode lives here and only here; so does the UI/headless policy (which face asks, and
what a run with nobody to ask does). Bad input is a :class:`PlanError`, one line that
says how to fix it.

Not here: doing any of it (:class:`agent_magic.session.Session` builds the cell from the
plan), the traits themselves (:mod:`agent_magic.magic`).

To add a per-cell flag: a trait and an ``@argument`` in :mod:`.magic`, a field here set
in :func:`plan_cell`, and its use where the session builds the piece it concerns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .conversation import Mode
from .secrets import SecretRules, extended_rules

Face = Literal["terminal", "widget"]
# What ui.kernel.frontend() reports: a widget frontend, a terminal, or nobody.
Frontend = Literal["widgets", "terminal", "headless"]
# What may be sent after a task (agent_magic.context.block.SOURCES, not imported here so
# loading the extension stays light).
_ALL_SOURCES = frozenset({"files", "variables", "cells", "notebook"})


class PlanError(ValueError):
    """The cell cannot run as written; the message is one line naming the fix."""


@dataclass(frozen=True)
class CellPlan:
    """Everything one cell will do, decided before anything happens."""

    task: str  # the cell's words (for --fix: what to do about the error, may be empty)
    fix: bool = False  # start from the last error raised by the user's code
    new: bool = False  # forget the conversation first
    mode: Mode = "always"  # who decides each step, as the user asked (after headless)
    replay: bool = False  # answer every request and review from the recording
    replay_replies: bool = False  # answer requests from the recording; a person reviews
    # What turned replay_replies on, as the way to turn it off ("run %%agent without
    # --replay-replies"): said where the person's decisions lead off the recording.
    replay_replies_off: str = ""
    seed: int | None = None  # answer repeated requests from the recording's cache
    face: Face = "terminal"  # who shows the conversation and asks
    review_timeout: float | None = 3600.0
    # the model
    model: str = "gpt-4o-mini"
    model_given: bool = False  # --model on the line: it overrides the config list's
    base_url: str | None = None
    config_list: str | None = None
    stream: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)  # temperature, reasoning_effort
    api: str = "auto"  # "auto" | "chat" | "responses" (AgentMagics.api)
    effort_given: bool = False  # --reasoning-effort on the line: over the config list's
    prices: Mapping[str, Any] = field(default_factory=dict)  # AgentMagics.prices, checked
    timeout: float = 120.0
    max_retries: int = 2
    retry_budget: float = 300.0
    # the loop
    max_turns: int = 10
    system_prompt: str = ""
    termination_marker: str = "TERMINATE"
    tools: bool = False
    # what the model is told, and running code
    context: bool = True  # the namespace summary with the task
    context_budget: int = 6000
    context_sources: frozenset[str] = _ALL_SOURCES  # which of them (context.block.SOURCES)
    describe_changes: bool = True
    images: bool = False
    max_output_chars: int = 8000
    max_display_chars: int = 2_000_000
    shell_timeout: float = 60.0
    step_timeout: float | None = None  # None: the executor's default; 0: no limit
    recording: str = ""
    # budgets (0: none): this cell's, and the session's across the kernel's cells
    max_tokens: int = 0
    max_cost: float = 0.0
    session_max_tokens: int = 0
    session_max_cost: float = 0.0
    # safety and size
    protected: frozenset[str] = frozenset()  # names guarded beside guard.DEFAULT_PROTECTED
    attended: bool = True  # someone (or the recording) can answer a review in this cell
    context_window: int | None = None  # tokens every request must fit; None: ask the endpoint
    # secrets: the user's extra value shapes (regexes) and secret names
    secret_patterns: tuple[str, ...] = ()
    secret_names: tuple[str, ...] = ()

    def secret_rules(self) -> SecretRules:
        """The cell's secret rules: the defaults, extended by the user's patterns and names."""
        return extended_rules(self.secret_patterns, self.secret_names)

    @property
    def loop_mode(self) -> Mode:
        """The loop's mode: under replay every decision is asked, and the recording answers."""
        return "always" if self.replay else self.mode

    @property
    def interactive(self) -> bool:
        """Whether a person is asked anything in this cell."""
        return self.mode != "never" and not self.replay

    def executor_options(self) -> dict[str, Any]:
        return {
            "max_output_chars": self.max_output_chars,
            "max_display_chars": self.max_display_chars,
            "shell_timeout": self.shell_timeout,
            "step_timeout": self.step_timeout,
            "describe_changes": self.describe_changes,
            "collect_images": self.images,
        }


def plan_cell(
    args: Any,
    settings: Any,
    *,
    cell: str,
    frontend: Frontend,
    awaiting: bool = False,
    env: Mapping[str, str] | None = None,
) -> CellPlan:
    """The plan for a cell with ``args`` (parsed from its line) and words ``cell``.

    ``frontend`` is where it runs (see :func:`agent_magic.ui.kernel.frontend`; with
    ``settings.ui`` set to 'widget' or 'terminal' it is ignored), ``awaiting`` whether
    the cell was rewritten into an awaited coroutine (only then can a widget wait).
    """
    from .transcript import replay_from_env

    fix = bool(args.fix)
    command = list(args.command)
    if command[:1] == ["fix"] and not cell.strip():  # %agent fix [what to do]
        fix, command = True, command[1:]
    if args.max_turns is not None and args.max_turns < 1:
        raise PlanError("agent: --max-turns must be at least 1")
    if args.step_timeout is not None and args.step_timeout < 0:
        raise PlanError("agent: --step-timeout must be 0 (no limit) or more seconds")
    budgets = _budgets(args, settings)
    if command and not fix:
        raise PlanError(
            f"unexpected {' '.join(command)!r} on the %%agent line; put the task in the cell body"
        )
    task = cell.strip() or (" ".join(command) if fix else "")
    if not task and not fix:
        raise PlanError("%%agent needs a task: write it in the cell body below the magic")
    env = os.environ if env is None else env
    from_env = replay_from_env(env)
    replay = bool(args.replay) or (settings.replay if from_env is None else from_env)
    replies = _replay_replies(args, settings, env, frontend, replay, from_env)
    if replies == "recording":  # nobody here to decide: the recording does, as --replay
        replay, replies = True, False
    mode: Mode = args.mode or settings.mode
    face, mode = _face(settings.ui, frontend, awaiting, mode, replay, settings.headless)
    seed = args.seed if args.seed is not None else settings.seed
    params: dict[str, Any] = (
        {} if settings.temperature is None else {"temperature": settings.temperature}
    )
    effort = getattr(args, "reasoning_effort", None) or getattr(settings, "reasoning_effort", None)
    if effort:
        params["reasoning_effort"] = effort
    prices = dict(getattr(settings, "prices", None) or {})
    try:
        from .llm.prices import parse_prices

        parse_prices(prices)  # checked here, so a bad one is the cell's one-line error
    except ValueError as error:
        raise PlanError(f"agent: {error}") from None
    secret_patterns = tuple(str(p) for p in settings.secret_patterns)
    secret_names = tuple(str(n) for n in settings.secret_names)
    try:
        extended_rules(secret_patterns, secret_names)
    except ValueError as error:
        raise PlanError(f"agent: {error}") from None
    return CellPlan(
        task=task,
        fix=fix,
        new=bool(args.new),
        mode=mode,
        replay=replay,
        replay_replies=bool(replies),
        replay_replies_off=_replies_off(args, env) if replies is True else "",
        seed=seed,
        face=face,
        review_timeout=settings.review_timeout or None,
        model=_model(args.model) if args.model is not None else settings.model,
        model_given=args.model is not None,
        base_url=args.base_url or settings.base_url,
        config_list=settings.config_list,
        stream=settings.stream and not args.no_stream,
        params=params,
        api=getattr(settings, "api", "auto") or "auto",
        effort_given=getattr(args, "reasoning_effort", None) is not None,
        prices=prices,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        retry_budget=settings.retry_budget,
        max_turns=args.max_turns if args.max_turns is not None else settings.max_turns,
        system_prompt=settings.system_prompt,
        termination_marker=settings.termination_marker,
        tools=bool(args.tools or settings.use_tools),
        context=settings.context and not args.no_context,
        context_budget=settings.context_budget,
        context_sources=frozenset(getattr(settings, "context_sources", _ALL_SOURCES)),
        describe_changes=settings.context,
        images=bool(args.images or settings.send_images),
        max_output_chars=settings.max_output_chars,
        max_display_chars=settings.max_display_chars,
        shell_timeout=settings.shell_timeout,
        step_timeout=args.step_timeout if args.step_timeout is not None else settings.step_timeout,
        recording=settings.recording,
        **budgets,
        protected=frozenset(getattr(settings, "protected", None) or ())
        | frozenset(getattr(args, "protect", None) or ()),
        attended=replay or frontend != "headless",
        context_window=getattr(settings, "context_window", 0) or None,
        secret_patterns=secret_patterns,
        secret_names=secret_names,
    )


def _budgets(args: Any, settings: Any) -> dict[str, Any]:
    """The budget fields: the cell's flags over the traits; a negative one is an error."""
    flags = {"max_tokens": args.max_tokens, "max_cost": args.max_cost}
    budgets: dict[str, Any] = {}
    for name in ("max_tokens", "max_cost", "session_max_tokens", "session_max_cost"):
        given = flags.get(name)
        value = given if given is not None else getattr(settings, name, 0) or 0
        if value < 0:
            where = f"--{name.replace('_', '-')}" if given is not None else f"AgentMagics.{name}"
            raise PlanError(f"agent: {where} must be 0 (no budget) or more")
        budgets[name] = value
    return budgets


def _replies_off(args: Any, env: Mapping[str, str]) -> str:
    """How to turn off the replay of replies, named by what turned it on."""
    from .transcript import REPLAY_ENV

    if getattr(args, "replay_replies", False):
        return "run %%agent without --replay-replies"
    if env.get(REPLAY_ENV, "").strip().lower() == "replies":
        return f"unset {REPLAY_ENV} (it is 'replies')"
    return "run %config AgentMagics.replay_replies = False (it was set to True)"


def _replay_replies(
    args: Any,
    settings: Any,
    env: Mapping[str, str],
    frontend: Frontend,
    replay: bool,
    from_env: bool | None,
) -> bool | Literal["recording"]:
    """Whether the recording answers the requests while a person makes the decisions.

    ``--replay-replies``, ``AgentMagics.replay_replies`` or ``AGENT_MAGIC_REPLAY=replies``.
    A full replay (``--replay``, ``AGENT_MAGIC_REPLAY=1``) decides too, and ``=0`` turns
    every replay off; a headless run (nobody to decide) answers "recording": the
    recording makes the decisions as well.
    """
    from .transcript import REPLAY_ENV

    wanted = bool(getattr(args, "replay_replies", False))
    if wanted and args.replay:
        raise PlanError("agent: use --replay or --replay-replies, not both")
    if env.get(REPLAY_ENV, "").strip().lower() == "replies":
        wanted = True
    elif from_env is False:
        return False
    wanted = wanted or bool(getattr(settings, "replay_replies", False))
    if not wanted or replay:
        return False
    if frontend == "headless" and settings.ui == "auto":
        return "recording"
    return True


def _model(text: str) -> str:
    """``--model`` as typed, without the quotes a shell or a paste left around it."""
    from .llm.config import ConfigError, clean_model_name

    try:
        return clean_model_name(text)
    except ConfigError as error:
        raise PlanError(f"agent: {error}") from None


def _face(
    ui: str, frontend: Frontend, awaiting: bool, mode: Mode, replay: bool, headless: str
) -> tuple[Face, Mode]:
    """Who asks, and the mode after the headless policy."""
    kind: Frontend = frontend if ui == "auto" else ("widgets" if ui == "widget" else "terminal")
    if kind == "terminal" or (kind == "widgets" and not awaiting):
        # No widget can wait here: a terminal, or a kernel where the cell was not
        # rewritten into an awaited coroutine. input() works in both.
        return "terminal", mode
    # In replay the recording answers every review, so nobody needs to be there.
    if kind == "headless" and mode != "never" and not replay:
        if headless != "never":
            raise PlanError(
                f"agent: --mode {mode} needs someone to answer, but this run has no widget "
                "frontend or terminal (nbconvert/nbclient/papermill); use --mode never, "
                "--replay to re-run from the recording, or "
                "%config AgentMagics.headless = 'never'"
            )
        mode = "never"
    return "widget", mode
