"""The widget in a real ipykernel, driven over the wire the way a notebook frontend does.

A kernel is started with jupyter_client; cells are sent as a notebook sends them
(``allow_stdin`` and a ``cellId``), widget models are read from ``comm_open`` on iopub,
and clicks and edits go back as ``comm_msg`` on the shell channel, exactly what
JupyterLab's widget manager sends. This proves the waiting cell sees the click without
a browser; tests/browser repeats it in a real JupyterLab.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import code
from jupyter_client.manager import start_new_kernel

from agent_magic.testing import FakeOpenAIServer

WIDGET = "application/vnd.jupyter.widget-view+json"


class Frontend:
    """Just enough of a notebook frontend: run cells, see widgets, click them."""

    def __init__(self, manager: Any, client: Any) -> None:
        self.manager = manager
        self.client = client
        self.models: dict[str, dict[str, Any]] = {}  # comm id -> widget state
        self.outputs: list[dict[str, Any]] = []
        self.idle: set[str] = set()
        self.closed: set[str] = set()  # comm ids the kernel closed: kept, never clicked

    def execute(self, code: str) -> str:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": True,
            "stop_on_error": True,
        }
        msg = self.client.session.msg(
            "execute_request", content, metadata={"cellId": uuid.uuid4().hex}
        )
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def pump(self, until: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"gave up waiting; outputs so far: {self.text()[-2000:]}")
            try:
                msg = self.client.get_iopub_msg(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            kind, content = msg["msg_type"], msg["content"]
            parent = msg["parent_header"].get("msg_id")
            if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
                self.models[content["comm_id"]] = content["data"]["state"]
            elif kind == "comm_msg" and content["data"].get("method") == "update":
                self.models.setdefault(content["comm_id"], {}).update(content["data"]["state"])
            elif kind == "comm_close":  # a closed widget can no longer be clicked
                self.closed.add(content["comm_id"])
            elif kind in (
                "stream",
                "display_data",
                "update_display_data",
                "execute_result",
                "error",
            ):
                self.outputs.append({"type": kind, "parent": parent, **content})
            elif kind == "status" and content["execution_state"] == "idle" and parent:
                self.idle.add(parent)

    def run(self, code: str, timeout: float = 30.0) -> str:
        msg_id = self.execute(code)
        self.pump(lambda: msg_id in self.idle, timeout)
        return msg_id

    def value(self, code: str, timeout: float = 30.0) -> str:
        """Run ``code`` and return the repr of its last expression (its execute_result).

        Read a kernel's state this way, not by printing it: ipykernel 7.4 drops a cell's
        printed (stream) output now and then (14 of 300 cells, none of 300 results, on a
        loaded 2-core machine), which failed checks that read ``print`` at random.
        """
        cell = self.run(code, timeout)
        for output in self.outputs:
            if output["parent"] == cell and output["type"] == "execute_result":
                return output["data"]["text/plain"]
        raise AssertionError(f"no value from {code!r}: {self.text(cell)}")

    def widget(self, css: str, enabled: bool = True) -> str:
        """The comm id of the newest open widget with this CSS class."""
        for comm_id, state in reversed(list(self.models.items())):
            if comm_id in self.closed or css not in state.get("_dom_classes", ()):
                continue
            if not enabled or not state.get("disabled"):
                return comm_id
        return ""

    def wait_widget(self, css: str) -> str:
        self.pump(lambda: bool(self.widget(css)))
        return self.widget(css)

    def send_comm(self, comm_id: str, data: dict[str, Any]) -> str:
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def click(self, css: str) -> None:
        self.send_comm(self.wait_widget(css), {"method": "custom", "content": {"event": "click"}})

    def type(self, css: str, value: str) -> None:
        """Type key by key as the code box's view does: one ordered message per edit."""
        comm_id = self.wait_widget(css)
        for end in range(1, len(value) + 1):
            content = {"value": value[:end]}
            self.send_comm(comm_id, {"method": "custom", "content": content})

    def text(self, parent: str | None = None) -> str:
        parts = []
        for output in self.outputs:
            if parent and output["parent"] != parent:
                continue
            if "text" in output:
                parts.append(output["text"])
            data = output.get("data") or {}
            parts.append(data.get("text/markdown") or data.get("text/plain") or "")
            if output["type"] == "error":
                parts.append(f"{output['ename']}: {output['evalue']}")
        return "\n".join(parts)


@pytest.fixture
def frontend(openai_env: FakeOpenAIServer, tmp_path) -> Iterator[Frontend]:
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        page = Frontend(manager, client)
        page.run("%load_ext agent_magic")
        yield page
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_edit_run_and_finish_over_the_wire(frontend: Frontend, openai_env) -> None:
    openai_env.enqueue(code("x = 1\nprint(x)"), "x is 42. TERMINATE")
    cell = frontend.execute("%%agent --mode always\nSet x.")
    frontend.type("agent-code", "x = 42\nprint('x is', x)")
    step1 = frontend.widget("agent-run")
    clicked = time.perf_counter()
    frontend.click("agent-run")  # at once: the click must not overtake the typing
    frontend.pump(lambda: len(openai_env.requests) == 2)
    click_to_model = time.perf_counter() - clicked
    # The next review's button, not step 1's: its "disabled" update may still be on the
    # way (iopub also carries the working line's updates) when the request arrives.
    frontend.pump(lambda: frontend.widget("agent-run") not in ("", step1))
    frontend.click("agent-run")  # now "Finish"
    frontend.pump(lambda: cell in frontend.idle)
    told = openai_env.requests[1].messages[-1]["content"]
    assert "+x = 42" in told and "-x = 1" in told and "x is 42" in told
    assert frontend.value("x * 2") == "84"
    shown = frontend.text(cell)
    assert "Step 1: edited and ran" in shown and "Conversation terminated" in shown
    print(f"click -> next model request: {click_to_model * 1000:.1f} ms")


def test_interrupt_while_waiting_keeps_the_kernel(frontend: Frontend, openai_env) -> None:
    openai_env.enqueue(code("never_ran = 1"))
    cell = frontend.execute("%%agent --mode always\nWait for me.")
    frontend.wait_widget("agent-run")
    pressed = time.perf_counter()
    frontend.manager.interrupt_kernel()  # what the interrupt button asks the server to do
    frontend.pump(lambda: cell in frontend.idle, timeout=10)
    stopped_in = time.perf_counter() - pressed
    assert "interrupted" in frontend.text(cell).lower()
    assert frontend.value("'alive', 'never_ran' in globals()") == "('alive', False)"
    print(f"interrupt -> cell done: {stopped_in * 1000:.0f} ms")
    assert stopped_in < 5


@pytest.mark.parametrize(
    ("when", "reply"),
    [
        ("the model is silent", "slow"),
        ("approved code runs", code("import time\ntime.sleep(30)\nslept = True")),
    ],
)
def test_interrupt_while_streaming_or_running(frontend: Frontend, openai_env, when, reply) -> None:
    from agent_magic.testing import Reply

    openai_env.enqueue(Reply("too late TERMINATE", delay=30) if reply == "slow" else reply)
    cell = frontend.execute("%%agent --mode never\nTake your time.")
    frontend.pump(lambda: len(openai_env.requests) == 1)
    time.sleep(0.5)  # the request is out, or the code is sleeping
    pressed = time.perf_counter()
    frontend.manager.interrupt_kernel()
    frontend.pump(lambda: cell in frontend.idle, timeout=10)
    stopped_in = time.perf_counter() - pressed
    assert "interrupted" in frontend.text(cell).lower(), when
    assert frontend.value("'alive', 'slept' in globals()") == "('alive', False)"
    print(f"interrupt while {when} -> cell done: {stopped_in * 1000:.0f} ms")
    assert stopped_in < 5


@pytest.mark.parametrize("outer", ["%%time", "%%capture captured"])
def test_agent_nested_in_another_cell_magic_runs(frontend: Frontend, openai_env, outer) -> None:
    """Under %%time or %%capture the cell is transformed while another runs: no await."""
    openai_env.enqueue(code("nested = 7"), "Done. TERMINATE")
    cell = frontend.run(f"{outer}\n%%agent --mode never\nSet nested.")
    assert "SyntaxError" not in frontend.text(cell)
    assert frontend.value("nested") == "7"
    assert len(openai_env.requests) == 2


def test_decided_review_widgets_are_closed(frontend: Frontend, openai_env) -> None:
    """A decided step's widget is replaced by its record, and its comms are closed."""
    openai_env.enqueue(code("y = 1"), "TERMINATE")
    cell = frontend.execute("%%agent --mode always\nSet y.")
    frontend.pump(lambda: bool(frontend.widget("agent-run")))
    step1 = frontend.widget("agent-run")
    frontend.click("agent-run")
    frontend.pump(lambda: len(openai_env.requests) == 2)
    # The finish review's button, not step 1's (closed or still closing).
    frontend.pump(lambda: frontend.widget("agent-run") not in ("", step1))
    frontend.click("agent-run")  # Finish
    frontend.pump(lambda: cell in frontend.idle)
    reviews = frontend.value(
        "from ipywidgets.widgets.widget import _instances\n"
        "sum('agent-review' in getattr(w, '_dom_classes', ()) for w in list(_instances.values()))"
    )
    assert reviews == "0"


def test_agent_fix_as_a_cell_of_its_own_reviews_in_the_widget(frontend: Frontend, openai_env):
    frontend.run("ratio = 1 / 0")
    openai_env.enqueue(code("ratio = 1 / 1"))
    cell = frontend.execute("%agent fix --mode always")
    frontend.click("agent-stop")
    frontend.pump(lambda: cell in frontend.idle)
    assert "ZeroDivisionError" in openai_env.requests[0].messages[-1]["content"]
    assert "Step 1: stopped" in frontend.text(cell)
