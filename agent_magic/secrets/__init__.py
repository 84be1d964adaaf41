"""Which values are secrets, and hiding them from text that leaves the kernel or is saved.

Here: :func:`is_secret_name` (does a variable, column, key or environment variable name
look like it holds a credential), :func:`looks_like_credential` (does a value start like
one), :class:`SecretRules` (the rules, as data), :func:`extended_rules` (the rules with
the user's ``AgentMagics.secret_patterns`` and ``secret_names``), :class:`Redactor`
(replaces secret values in text and JSON-shaped data with a marker naming what was hidden,
and :meth:`Redactor.refresh` keeps it up to date with a changing namespace), :mod:`.pieces`
(finding runs of known values), :func:`redact_message` (the one-line errors about a
server or a config, under ``MESSAGE_RULES``) and
:func:`hidden_note` (how a step record says how many it hid). The modules: :mod:`.patterns`
(names, value shapes, :class:`SecretRules`) and :mod:`.redactor` (:class:`Redactor`).

Not here: where redaction is applied (the chat client and the recorder call
:meth:`Redactor.redact` on what they send or write, the log and the export read the
recorded records, and a step's output capture, :mod:`agent_magic.kernel.capture`, hides
values in what the step shows as it runs), describing values
(:mod:`agent_magic.context` uses :func:`is_secret_name` to hide a value's contents).

What is hidden (``DEFAULT_RULES``):

* **Environment variables with secret-looking names** (see names below) whose value has at
  least ``min_length`` (8) characters: ``[hidden: $MY_SERVICE_TOKEN]``.
* **Namespace variables with secret-looking names** holding a ``str`` of 8+ characters,
  and ``str`` values under secret-looking keys of a top-level ``dict``:
  ``[hidden: variable db_password]``, ``[hidden: variable config['api_key']]``.
* **Extra values** given by the caller (the configured api keys): ``[hidden: api key]``.
* **Pieces of the values above**: every run of 12 or more of their characters, wherever
  it stands (a key printed over two lines, a repr cut short), with the value's marker
  (:mod:`.pieces`).
* **Strings shaped like credentials**, whatever holds them: OpenAI / Anthropic keys
  (``sk-...``, ``sk-proj-...``, ``sk-ant-...``), AWS access key ids (``AKIA``/``ASIA`` +
  16) and a 40-character secret access key printed near one, GitHub tokens (``ghp_``,
  ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), Slack tokens (``xoxb-`` ...),
  Google API keys (``AIza`` + 35), Stripe secret keys (``sk_live_``), Hugging Face tokens
  (``hf_``), JSON Web Tokens (``eyJ...``.``...``.``...``), ``Bearer`` tokens and PEM
  private-key blocks (``-----BEGIN ... PRIVATE KEY-----`` to its ``END`` line, or to the
  end of its base64 when the block was cut): ``[hidden: AWS access key id]``.

Names. A name is split into words at ``_``, ``-``, ``.``, spaces, digits and lower-to-upper
changes (``GithubToken`` -> github, token; ``OPENAI_API_KEY`` -> openai, api, key). It
looks secret when it contains one of ``name_parts`` anywhere (``secret``, ``password``,
``passwd``, ``passphrase``, ``credential``, ``apikey``) or has one of ``name_words`` as a
word (``key``, ``token``, ``auth``, ``bearer``, ``pwd`` in a name of two words or more),
unless its last word is one of ``not_secret_last_words`` (``file``, ``path``, ``dir``,
``sock``, ...: ``SSH_AUTH_SOCK``, ``KEY_FILE`` name a place, not a secret). So ``PATH``,
``KEYBOARD``, ``MONKEY``, ``tokenizer``, ``author`` and ``PWD`` are not secret names.

Extending the rules. ``SecretRules.extended(patterns=..., names=...)`` returns new rules
(in a notebook: ``%config AgentMagics.secret_patterns = [r"acme_[A-Za-z0-9]{32}"]`` and
``%config AgentMagics.secret_names = ["dsn"]``, read by :func:`extended_rules`):

* ``patterns``: more value shapes, as regular expressions (Python ``re`` syntax), either a
  mapping ``{label: regex}`` (the marker says ``[hidden: <label>]``) or a list of regexes
  (labelled ``custom pattern``). Keep them linear: start with a literal prefix
  (``acme_[A-Za-z0-9]{32}``), avoid nested quantifiers.
* ``names``: more secret names. A single word (``dsn``) is matched as a word of a name; a
  name of several words (``SENTRY_DSN``, ``sessionCookie``) matches any name containing
  those words in that order, adjacent (``MY_SENTRY_DSN``).

Every function here is linear in the length of its input (a 1 MB unbroken line included),
never raises on odd text (lone surrogates, ``str`` subclasses) and never returns a secret
it knows of.
"""

from __future__ import annotations

from .patterns import (
    DEFAULT_RULES,
    MESSAGE_RULES,
    SecretRules,
    extended_rules,
    hidden_note,
    is_secret_name,
    looks_like_credential,
)
from .redactor import Redactor, redact_message

__all__ = [
    "DEFAULT_RULES",
    "MESSAGE_RULES",
    "Redactor",
    "SecretRules",
    "extended_rules",
    "hidden_note",
    "is_secret_name",
    "looks_like_credential",
    "redact_message",
]
