"""Where each server puts the thinking, read off the wire (agent_magic.llm.wire)."""

from __future__ import annotations

from agent_magic.conversation import ThinkingDelta, Usage
from agent_magic.llm import wire
from agent_magic.llm.config import Endpoint

ENDPOINT = Endpoint("m", None, "http://127.0.0.1:9/v1")


def chunk(**delta) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def test_reasoning_fields_stream_as_thinking_deltas():
    state = wire.StreamState()
    seen = []
    for piece in (
        chunk(reasoning_content="Maybe rm", content=None),  # DeepSeek, llama-server, LM Studio
        chunk(reasoning=" -rf? No."),  # Ollama, OpenRouter, newer vLLM
        chunk(reasoning_content=" Fine.", reasoning=" Fine."),  # vLLM may send both: once
        chunk(content="rows = 3"),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ):
        seen.extend(state.take(piece))
    state.done = True
    assert seen == [
        ThinkingDelta("Maybe rm"),
        ThinkingDelta(" -rf? No."),
        ThinkingDelta(" Fine."),
        "rows = 3",
    ]
    reply = state.reply("m", "label")
    assert (reply.thinking, reply.content, reply.cut_off) == (
        "Maybe rm -rf? No. Fine.",
        "rows = 3",
        None,
    )


def test_inline_thinking_in_the_stream_is_split_as_it_comes():
    state = wire.StreamState()
    seen = []
    for piece in ("<thi", "nk>rm -rf?", " No.</think>\n", "rows = 3"):
        seen.extend(state.take(chunk(content=piece)))
    seen.extend(state.rest())
    state.done, state.finish = True, "stop"
    assert seen == [ThinkingDelta("rm -rf?"), ThinkingDelta(" No."), "\n", "rows = 3"]
    reply = state.reply("m", "label")
    assert (reply.thinking, reply.content) == ("rm -rf? No.", "rows = 3")


def test_a_stream_of_thinking_only_that_breaks_is_a_cut_off_reply():
    state = wire.StreamState()
    state.take(chunk(reasoning_content="hmm"))
    assert state.begun  # so a broken connection keeps it, marked cut off
    state.broken = True
    reply = state.reply("m", "label")
    assert reply.cut_off == "incomplete stream" and reply.content == "" and reply.thinking == "hmm"


def test_json_replies_and_reasoning_tokens():
    for field in ("reasoning_content", "reasoning"):
        completion = {
            "choices": [
                {"message": {"content": "rows = 3", field: "hmm"}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 30,
                "completion_tokens_details": {"reasoning_tokens": 20},
            },
        }
        reply = wire.reply_from_completion(completion, ENDPOINT)
        assert (reply.thinking, reply.content) == ("hmm", "rows = 3")
        assert reply.usage == Usage(10, 30, 20)
    inline = {"choices": [{"message": {"content": "hmm</think>\nrows = 3"}}]}
    reply = wire.reply_from_completion(inline, ENDPOINT)
    assert (reply.thinking, reply.content) == ("hmm", "rows = 3")
    unfinished = {"choices": [{"message": {"content": "<think>rm -rf"}, "finish_reason": "stop"}]}
    assert wire.reply_from_completion(unfinished, ENDPOINT).cut_off == "unfinished thinking"
    odd = {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "completion_tokens_details": {"reasoning_tokens": True},
    }
    assert wire.completion_usage(odd) == Usage(1, 2, 0)


def test_the_log_folds_the_thinking_and_old_records_read():
    from agent_magic.transcript import parse_records, render_log, reply_from_record

    record = {
        "event": "reply",
        "conversation": "c",
        "step": 1,
        "rkey": "k",
        "content": "Counting.",
        "thinking": "rm -rf? <b>No</b>.",
        "thinking_seconds": 41.2,
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "reasoning_tokens": 1},
    }
    plain, markdown = render_log(parse_records([record]))
    thought = "--- assistant's thinking (thought for 41 s)\nrm -rf? <b>No</b>."
    assert plain == f"{thought}\n--- assistant\nCounting."
    assert "<details><summary>thought for 41 s (thinking, never run)</summary>" in markdown
    assert "```\nrm -rf? <b>No</b>.\n```" in markdown  # fenced: shown as written, inert
    assert reply_from_record(record, "replay").thinking == "rm -rf? <b>No</b>."
    old = {k: v for k, v in record.items() if k not in ("thinking", "thinking_seconds")}
    old["usage"] = {"prompt_tokens": 1, "completion_tokens": 2}
    assert reply_from_record(old, "replay").thinking == ""
    assert "thinking" not in render_log(parse_records([old]))[0]
