"""Thinking told apart from the answer: agent_magic.thinking, whole and streamed."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_magic.thinking import Split, ThinkingSplitter, split_thinking

DRAFT = "Maybe:\n```python\nimport shutil; shutil.rmtree('data')\n```\nNo, don't do that."
ANSWER = "Let me count the rows.\n```python\nprint(len(df))\n```"


def test_inline_thinking_with_the_opening_tag():
    split = split_thinking(f"<think>\n{DRAFT}\n</think>\n\n{ANSWER}")
    assert split == Split(DRAFT, ANSWER)


def test_thinking_without_the_opening_tag_ends_at_the_closing_one():
    # Qwen3-style templates open <think> in the prompt: only </think> ends it.
    split = split_thinking(f"{DRAFT}\n</think>\n\n{ANSWER}")
    assert split == Split(DRAFT, ANSWER)


def test_thinking_tags_and_several_blocks():
    text = "<thinking>first</thinking>\nA\n<THINK>second\n</Think>\nB"
    assert split_thinking(text) == Split("first\n\nsecond", "A\n\nB")


def test_an_unclosed_thinking_at_the_end_is_all_thinking_and_unfinished():
    split = split_thinking(f"{ANSWER}\n<think>\n{DRAFT}")
    assert split == Split(DRAFT, ANSWER, unfinished=True)


def test_text_without_tags_is_the_answer_unchanged():
    for text in ("", "  hello\n\n", ANSWER, "a < b and c > d", "x = '<thin'"):
        assert split_thinking(text) == Split("", text)


def test_tags_written_in_code_are_left_alone():
    text = 'Strip the tags:\n```python\nprint(s.replace("<think>", ""))\n```'
    assert split_thinking(text) == Split("", text)
    # A stray closing tag after the thinking stays in the answer as written.
    text = '<think>hm</think>\n```python\nprint("</think>")\n```'
    assert split_thinking(text) == Split("hm", '```python\nprint("</think>")\n```')


def test_a_reply_split_already_splits_to_itself():
    from agent_magic.conversation import ChatReply
    from agent_magic.thinking import without_thinking

    answer = 'Strip it:\n```python\nprint(s.split("</think>")[-1])\n```'
    once = without_thinking(ChatReply(f"<think>hm</think>\n{answer}"))
    assert (once.thinking, once.content) == ("hm", answer)
    assert without_thinking(once) == once
    assert split_thinking(answer, unopened=False) == Split("", answer)


# Text with no "<" cannot hold a tag; newlines and spaces are where tags may stand.
_plain = st.text(alphabet=st.sampled_from("ab \n`x=()"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    blocks=st.lists(st.tuples(_plain, _plain), min_size=1, max_size=5),
    opened=st.booleans(),
    tag=st.sampled_from(["think", "thinking", "Think"]),
)
def test_answer_text_is_never_lost_and_thinking_never_leaks(blocks, opened, tag):
    """Thinking blocks followed by answer text, the first maybe without its opening tag:
    every answer's words come out in the answer, in order; no thinking word does."""
    parts = []
    for number, (thought, answer) in enumerate(blocks):
        opening = f"<{tag}>" if number or opened else ""
        parts.append(f"\n{opening}T{thought}T</{tag}>A{answer}A")
    split = split_thinking("".join(parts))
    assert not split.unfinished
    assert split.answer.replace("\n", "") == "".join(f"A{answer}A" for _, answer in blocks).replace(
        "\n", ""
    )
    assert "T" not in split.answer
    assert "A" not in split.thinking
    assert split.thinking.count("T") == 2 * len(blocks)


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(st.sampled_from(["<think>", "</think>", "<", "a", "\n", " ", "/"])).map("".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_the_stream_splitter_agrees_with_the_whole_split(text, cuts):
    """Fed in any pieces, the splitter hands on all the text once, and when no closing
    tag came without an opening one, the same answer and thinking as the whole split."""
    splitter = ThinkingSplitter()
    pieces, at = [], 0
    for cut in sorted(cuts):
        pieces.extend(splitter.feed(text[at:cut]))
        at = max(at, cut)
    pieces.extend(splitter.feed(text[at:]))
    pieces.extend(splitter.end())
    answer = "".join(t for thinking, t in pieces if not thinking)
    thought = "".join(t for thinking, t in pieces if thinking)
    whole = split_thinking(text)
    if not splitter.reclassified:
        assert answer.strip("\n") == whole.answer.strip("\n")
        assert "".join(thought.split()) == "".join(whole.thinking.split())
    assert len(answer) + len(thought) <= len(text)


def test_splitter_pieces_and_a_tag_cut_in_two():
    splitter = ThinkingSplitter()
    out = []
    for piece in ["<th", "ink>Hmm, rm -rf?", " No.</thi", "nk>\n\nprint(1)"]:
        out.extend(splitter.feed(piece))
    out.extend(splitter.end())
    assert [(k, t) for k, t in out if t] == [
        (True, "Hmm, rm -rf?"),
        (True, " No."),
        (False, "\n\nprint(1)"),
    ]
    assert not splitter.inside and not splitter.reclassified


def test_splitter_without_an_opening_tag_says_it_reclassified():
    splitter = ThinkingSplitter()
    assert splitter.feed("drafting...") == [(False, "drafting...")]
    assert splitter.feed("</think>answer") == [(False, "answer")]
    assert splitter.reclassified


def test_linear_on_adversarial_text():
    """A megabyte of near-tags is taken apart in well under the time a quadratic scan
    would need (hours); the bound is loose on purpose."""
    for text in (
        "x<think>" * 150_000,
        "<" * 1_000_000,
        "</think>" * 150_000,
        "<think>" + "<think>\n" * 150_000,
        "<thi" * 300_000,
    ):
        started = time.monotonic()
        split_thinking(text)
        splitter = ThinkingSplitter()
        for at in range(0, len(text), 4096):
            splitter.feed(text[at : at + 4096])
        splitter.end()
        assert time.monotonic() - started < 20
