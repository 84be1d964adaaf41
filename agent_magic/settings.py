"""The settings of ``%%agent``: :class:`AgentSettings`, one traitlet per setting, each with
its help (``%config AgentMagics`` lists them; ``%config AgentMagics.<name> = ...`` or an
``ipython_config.py`` sets them). :class:`~agent_magic.magic.AgentMagics` is the magic
that reads them; a cell's flags override them in :func:`agent_magic.plan.plan_cell`.
"""

from __future__ import annotations

from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode
from traitlets.config import Configurable

from .defaults import DEFAULT_SYSTEM_PROMPT, MODES, RECORDING_NAME


class AgentSettings(Configurable):
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
    api = Enum(
        ("auto", "chat", "responses"),
        default_value="auto",
        help="Which OpenAI API to ask: 'chat' (chat completions), 'responses' (the Responses "
        "API, POST /responses, stateless with store=false; Azure OpenAI's too), or 'auto': "
        "chat completions until the endpoint says the model is served by the Responses API "
        "only (gpt-5-codex, o3-pro...), then the Responses API for that endpoint and model "
        'for the rest of the kernel. A config-list entry\'s "api" field overrides it.',
    ).tag(config=True)
    reasoning_effort = Enum(
        ("none", "minimal", "low", "medium", "high"),
        default_value=None,
        allow_none=True,
        help="How hard a reasoning model thinks: reasoning_effort in chat requests, "
        "reasoning.effort in Responses requests; 'none' switches thinking off where the "
        "server takes it (Ollama, gpt-5.1). None: not sent (the server's default).",
    ).tag(config=True)
    prices = Dict(
        help="Prices to add or override, in US$ per million tokens: {'my-model': {'input': "
        "0.5, 'output': 1.5}}. Other models are priced from the genai-prices package "
        "(looked up on first use); an unknown price shows no cost.",
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
        2_000_000,
        help="Most characters of a step's printed output shown in the notebook, and of a "
        "reply shown in the cell and in %agent log (the recording keeps it whole).",
    ).tag(config=True)
    retry_budget = Float(
        300.0,
        help="Seconds an endpoint may take to start answering, its retries included; then "
        "the next config-list entry is tried, or the cell stops with the error. 0: no bound "
        "beyond timeout x (max_retries + 1).",
    ).tag(config=True)
    shell_timeout = Float(60.0, help="Seconds before an sh block is killed.").tag(config=True)
    step_timeout = Float(
        None,
        allow_none=True,
        help="Seconds a Python step may run before it is interrupted as the interrupt button "
        "would (the kernel and its namespace stay; the model is told). None: 600; 0: no limit.",
    ).tag(config=True)
    max_tokens = Int(
        0,
        help="Token budget per cell: prompt and completion tokens over all its model calls "
        "(an estimate where the server reports none). Once spent, the cell stops with one "
        "line before the next request; 0: none. Not the model's reply length.",
    ).tag(config=True)
    max_cost = Float(
        0.0,
        help="Cost budget per cell in US$, for models with a known price (see %agent usage); "
        "with an unknown price the cell stops rather than spend blind. 0: none.",
    ).tag(config=True)
    session_max_tokens = Int(
        0, help="Token budget across this kernel's %%agent cells (like max_tokens); 0: none."
    ).tag(config=True)
    session_max_cost = Float(
        0.0, help="Cost budget in US$ across this kernel's %%agent cells; 0: none."
    ).tag(config=True)
    context = Bool(
        True,
        help="Send the context with each task: the files the task names, the session's "
        "variables, the code of earlier cells and the notebook's Markdown (see "
        "context_sources; %agent context shows it).",
    ).tag(config=True)
    context_budget = Int(
        6000,
        help="Most characters of the context sent with a task, all sources together (the "
        "variables take at most two thirds of it).",
    ).tag(config=True)
    context_sources = List(
        Unicode(),
        default_value=["files", "variables", "cells", "notebook"],
        help="Which context to send with a task: 'files' (a preview of each file the task "
        "names), 'variables' (the namespace summary), 'cells' (the code run before this "
        "cell, newest first), 'notebook' (the saved notebook's Markdown, when the kernel "
        "knows its notebook).",
    ).tag(config=True)
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

    protected = List(
        Unicode(),
        default_value=[],
        help="Names a step may not rebind, delete or change in place without asking, even "
        "in --mode never (headless, such a step is refused and the model told why); added "
        "to the ones IPython and this extension rely on (get_ipython, In, Out, exit, ...).",
    ).tag(config=True)
    context_window = Int(
        0,
        help="Tokens every request must fit (prompt and reply): older step outputs are "
        "shortened and older turns folded into a summary. 0: the endpoint's (config-list "
        "context_window, what its server reports, or the model's known size).",
    ).tag(config=True)
    replay_replies = Bool(
        False,
        help="Answer every request from the recording but leave each review to the person "
        "(try the widget without a key); where a decision leads off the recording, the cell "
        "stops with one line. AGENT_MAGIC_REPLAY=replies sets it for a whole run; a run "
        "with nobody to decide (nbconvert, papermill) replays the decisions too.",
    ).tag(config=True)
    secret_patterns = List(
        Unicode(),
        help="More value shapes to hide, as Python regular expressions, on top of the built-in "
        "ones (OpenAI/Anthropic sk-..., AWS AKIA/ASIA, GitHub ghp_/github_pat_, Slack xox?-, "
        "Google AIza, JWTs, PEM private keys, ...): a match is replaced by "
        "'[hidden: custom pattern]' in everything sent to the model, recorded, exported, "
        "logged or shown in the cell's step output. Start each with a literal prefix and "
        "avoid nested quantifiers, e.g. ['acme_[A-Za-z0-9]{32}'].",
    ).tag(config=True)
    secret_names = List(
        Unicode(),
        help="More words that make a name secret, on top of key, token, secret, password, "
        "credential, auth, ...: environment variables and session variables with such a name "
        "have their values (8+ characters) hidden like keys. A single word ('dsn') matches "
        "a word of a name (SENTRY_DSN, dbDsn); several ('session_cookie') match those words "
        "in order.",
    ).tag(config=True)
