"""Two small notebook helpers that are not part of a review.

:class:`BusyStatus` keeps the frontend's kernel status at 'busy' while an ``%%agent``
cell runs; :class:`KeyBox` is ``%agent key``'s password box. Not here: the review
(:mod:`.review`) and the cell outputs (:mod:`.widget`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from .review import styled_button


class BusyStatus:
    """Keeps the frontend's kernel status at 'busy' for as long as the ``%%agent`` cell runs.

    The kernel says 'busy' when the cell starts and 'idle' when it ends, but requests
    handled meanwhile end with an 'idle' of their own, and JupyterLab's status bar shows
    the last status it got, whatever its parent: the subshell requests that Lab's widget
    manager sends on the control channel when a review's widgets open and close
    (ipykernel 7.4, ipywidgets 8.1) turned it to Idle while the review waited and while
    the approved code ran; on kernels that wrap comm messages in busy/idle, so would
    every keystroke reaching the editor. So while held, each 'idle' sent for another
    request is followed by a 'busy' for this cell's request. The 'idle' itself still
    goes out first, unchanged, so a client counting the idle replies to its own messages
    (ipywidgets' state sync) sees every one: keystrokes sync as before, only the status
    shown changes. It lets go at :meth:`release` or at the cell's own 'idle', whichever
    comes first, so it never outlives the cell. Outside a kernel it does nothing.
    """

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.held = False
        self._hook: Any = None

    def hold(self) -> None:
        kernel = self.kernel
        publish = getattr(kernel, "_publish_status", None)
        get_parent = getattr(kernel, "get_parent", None)
        if self.held or not callable(publish) or not callable(get_parent):
            return
        cell = get_parent("shell") or {}
        cell_id = (cell.get("header") or {}).get("msg_id")
        if not cell_id:
            return

        def publish_status(status: str, channel: str, parent: Any = None) -> None:
            publish(status, channel, parent)
            if status != "idle" or not self.held:
                return
            replied = parent or get_parent(channel) or {}
            if (replied.get("header") or {}).get("msg_id") == cell_id:
                self.release()  # the cell has ended
            else:
                publish("busy", "shell", cell)

        self._hook, self.held = publish_status, True
        # An instance attribute over the method (the kernel calls self._publish_status
        # from the shell and control threads alike); removed again by release().
        kernel._publish_status = publish_status

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.kernel.__dict__.get("_publish_status") is self._hook:
            del self.kernel._publish_status


class KeyBox:
    """``%agent key`` in a notebook: a password box and **Save**.

    **Save** hands the key to ``keep`` (:func:`agent_magic.apikey.keep`, which returns the
    line to show), empties the box (so no copy stays in the widget's state, which a
    notebook can save) and closes it, leaving that line. The cell need not wait: the key
    is there for the next ``%%agent`` cell once Save is clicked.
    """

    def __init__(self, keep: Callable[[str], str]) -> None:
        self._keep = keep
        self.password = widgets.Password(
            placeholder="API key (not shown; kept in this kernel's memory only)",
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.password.add_class("agent-key")
        self.save = styled_button(
            "Save", "agent-key-save", "success", "key", "Keep the key for this kernel"
        )
        self.status = widgets.HTML("")
        self.status.add_class("agent-status")
        self.row = widgets.HBox([self.password, self.save])
        self.box = widgets.VBox([self.row, self.status], layout=widgets.Layout(width="100%"))
        self.save.on_click(lambda _: self._save())

    def _save(self) -> None:
        import html

        typed, self.password.value = self.password.value, ""
        if not typed.strip():
            self.status.value = "Type the key first."
            return
        message = self._keep(typed)
        self.status.value = html.escape(message)
        self.box.children = (self.status,)
        for widget in (self.password, self.save, self.row):
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        plain = "[%agent key: type the key in the password box, then Save]"
        return {**self.box._repr_mimebundle_(**kwargs), "text/plain": plain}
