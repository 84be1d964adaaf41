"""A real JupyterLab (and Notebook 7) in headless Chromium, for the review widget.

One jupyter server and one browser serve the whole ``tests/browser`` package (package
scope, which needs the ``__init__.py`` here: playwright's sync API keeps an event loop
running in this thread while its browser is open, and the rest of the suite needs
``asyncio.run``, so both are closed before pytest leaves this folder). Every test gets
its own local OpenAI-compatible server, notebook and page, and its kernels are shut
down after it. Everything listens on 127.0.0.1; the jupyter server is stopped by its
PID. On a failure the page's screenshot, its text and the server's log (kernel stderr
included) are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from agent_magic.testing import FakeOpenAIServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-extensions",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)


def _need(what: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{what} is missing; CI must install it (see .ci/run)")
    pytest.skip(f"{what} is missing; install it to run the browser tests")


@dataclass
class Jupyter:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")


WIDGET_EXTENSIONS = ("jupyter-widgets-jupyterlab-manager", "anywidget")


def _check_widget_extensions(server: Jupyter) -> None:
    """Fail at once, with a reason, when the server would not render widgets."""
    try:
        listed = server.api("GET", "/lab/api/extensions")
    except OSError:
        return  # no extension manager API: the widget tests will tell
    found = {entry.get("name"): entry for entry in listed if isinstance(entry, dict)}
    for name in WIDGET_EXTENSIONS:
        entry = found.get(name)
        if entry is None or not entry.get("enabled") or entry.get("status") != "ok":
            pytest.fail(f"the {name} lab extension is not loaded: {entry or sorted(found)}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="package")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("lab-root")
    home = tmp_path_factory.mktemp("lab-home")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test-browser-dummy",  # the local server ignores it
        # A developer's own config, user-installed extensions and IPython profile
        # stay out; labextensions and kernelspecs under sys.prefix are still found.
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    for name in list(env):
        if name.startswith(("OPENAI_BASE", "AZURE_OPENAI_")) or name == "OAI_CONFIG_LIST":
            del env[name]
    # No "news" popup over the notebook.
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    log = home / "jupyter.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Jupyter(f"http://127.0.0.1:{port}", token, root, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.api("GET", "/api/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-3000:]
                    raise RuntimeError(f"jupyter lab did not start:\n{tail}") from None
                time.sleep(0.2)
        _check_widget_extensions(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright")
    executable = shutil.which("chromium")
    if executable is None:
        _need("Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Notebook:
    """One open notebook page, with the few gestures the tests need."""

    page: Any
    jupyter: Jupyter
    model: FakeOpenAIServer
    panel: str
    clicked_wall: float = 0.0

    def cell(self, index: int) -> Any:
        return self.page.locator(f"{self.panel} .jp-Cell").nth(index)

    def run(self, index: int) -> None:
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")

    def prompt(self, index: int) -> str:
        return self.cell(index).locator(".jp-InputPrompt").inner_text().strip()

    def wait_done(self, index: int, timeout: float = 30) -> str:
        """Wait until the cell has run (its prompt shows a number) and return its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            prompt = self.prompt(index)
            if prompt not in ("[*]:", "[ ]:", ""):
                return self.output(index)
            time.sleep(0.05)
        raise AssertionError(f"cell {index} still running: {self.output(index)[-1500:]}")

    def output(self, index: int) -> str:
        area = self.cell(index).locator(".jp-OutputArea")
        return area.inner_text() if area.count() else ""

    def settled_output(self, index: int, *texts: str, timeout: float = 30) -> str:
        """The cell's output once it shows every one of ``texts`` (Lab renders outputs
        and their updates asynchronously: a control can be visible before the output
        around it has settled), or as it is at ``timeout``, for the assertions to show."""
        deadline = time.monotonic() + timeout
        shown = self.output(index)
        while not all(text in shown for text in texts) and time.monotonic() < deadline:
            time.sleep(0.05)
            shown = self.output(index)
        return shown

    def control(self, css: str) -> Any:
        return self.page.locator(f"{self.panel} .agent-review:not(:has(:disabled)) {css}").last

    def wait_review(self, timeout: float = 60) -> None:
        self.control("button.agent-run").wait_for(state="visible", timeout=timeout * 1000)

    def click(self, css: str) -> float:
        """Click a widget control; return when it was clicked (time.monotonic()).

        ``clicked_wall`` keeps the same moment as ``time.time()``, to compare with a
        time the kernel took (same machine, same clock)."""
        target = self.control(css)
        target.wait_for(state="visible", timeout=30_000)
        self.clicked_wall = time.time()
        clicked = time.monotonic()
        target.click()
        return clicked

    def requests_after(self, count: int, timeout: float = 30) -> float:
        """Wait for the model's ``count``-th request; return when the server got it."""
        deadline = time.monotonic() + timeout
        while len(self.model.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the model got {len(self.model.requests)} requests")
            time.sleep(0.002)
        return self.model.requests[count - 1].time

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True, timeout=10_000)
        return path


def agent_setup(model: FakeOpenAIServer) -> str:
    """The first cell: load the extension and point it at this test's model server."""
    return (
        "%load_ext agent_magic\n"
        f"%config AgentMagics.base_url = {model.base_url!r}\n"
        "%config AgentMagics.max_retries = 0"
    )


def write_notebook(root: Path, cells: list[str]) -> str:
    name = f"nb-{secrets.token_hex(4)}.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, root / name)
    return name


def open_notebook(notebook: Notebook, name: str, app: str) -> None:
    """Open ``name`` in ``app`` ("lab" or "notebook") and run its first cell."""
    page, jupyter = notebook.page, notebook.jupyter
    if app == "lab":
        page.goto(f"{jupyter.url}/lab/tree/{name}?token={jupyter.token}&reset")
    else:
        page.goto(f"{jupyter.url}/notebooks/{name}?token={jupyter.token}")
    # Wait for the notebook, then run the setup cell. Shift+Enter before the kernel
    # session is connected runs nothing (the prompt stays "[ ]"), so run it again until
    # the cell is taken; a page that never gets there is reloaded once.
    for attempt in range(2):
        try:
            page.locator(f"{notebook.panel} .jp-Cell").first.wait_for(timeout=60_000)
            deadline = time.monotonic() + 60
            while True:
                notebook.run(0)
                taken = time.monotonic() + 3
                while notebook.prompt(0) in ("[ ]:", "") and time.monotonic() < taken:
                    time.sleep(0.05)
                if notebook.prompt(0) not in ("[ ]:", ""):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("the setup cell never started: no kernel?")
            notebook.wait_done(0, timeout=60)
            return
        except Exception as error:
            if attempt:
                raise
            print(f"open_notebook: retrying after {type(error).__name__}: {str(error)[:300]}")
            notebook.screenshot(f"open-retry-{name}.png")
            page.reload()


def accept_kernel_dialog(page: Any) -> None:
    """Lab may ask which kernel to start (while its kernelspecs still load, so mostly on
    the first page): take the notebook's own whenever the dialog is in front of a click,
    instead of timing out behind it."""
    choose = page.locator(".jp-Dialog:has-text('Select Kernel') button.jp-mod-accept")
    page.add_locator_handler(choose, lambda button: button.click())


PANELS = {"lab": ".jp-NotebookPanel:not(.lm-mod-hidden)", "notebook": ".jp-NotebookPanel"}


@pytest.fixture
def notebook_factory(browser: Any, jupyter: Jupyter, request: pytest.FixtureRequest):
    """``make(cells, app="lab", setup=None)``: a notebook whose first cell is ``setup``
    (by default: load the extension, pointed at a fresh local model server), then
    ``cells``; opened in a new page of ``app`` with the first cell run."""
    opened: list[Notebook] = []
    servers: list[FakeOpenAIServer] = []

    def make(cells: list[str], app: str = "lab", setup: str | None = None) -> Notebook:
        model = FakeOpenAIServer().start()
        servers.append(model)
        name = write_notebook(jupyter.root, [setup or agent_setup(model), *cells])
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        accept_kernel_dialog(page)
        notebook = Notebook(page, jupyter, model, PANELS[app])
        opened.append(notebook)
        open_notebook(notebook, name, app)
        return notebook

    yield make
    report = getattr(request.node, "rep_call", None)
    failed = report is None or report.failed
    test = request.node.name.replace("/", "_")
    for index, notebook in enumerate(opened):
        if failed:
            _keep_evidence(notebook, f"failed-{test}-{index}")
        notebook.page.close()
    if failed and opened:
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(jupyter.log, ARTIFACTS / f"failed-{test}-jupyter.log")
    jupyter.shutdown_kernels()
    for model in servers:
        model.stop()


def _keep_evidence(notebook: Notebook, stem: str) -> None:
    """The page's screenshot and text, for a failed test (best effort)."""
    try:
        notebook.screenshot(f"{stem}.png")
        text = notebook.page.locator(notebook.panel).first.inner_text(timeout=5_000)
        (ARTIFACTS / f"{stem}.txt").write_text(text)
    except Exception as error:  # a crashed page must not hide the test's own failure
        print(f"could not save {stem}: {error}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


@pytest.fixture
def record_timing():
    """Print a measured latency and keep it in test-artifacts/browser-timings.json."""

    def record(name: str, seconds: float) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / "browser-timings.json"
        timings = json.loads(path.read_text()) if path.exists() else {}
        timings.setdefault(name, []).append(round(seconds * 1000, 1))
        path.write_text(json.dumps(timings, indent=2))
        print(f"{name}: {seconds * 1000:.1f} ms")

    return record
