"""A real JupyterLab driven by a real Chromium: server, browser and page helpers.

Used by the browser benchmarks (``widget_stream.py``, ``big_trace.py``, through ``lab_session``) and by the
browser tests (through the fixtures in ``tests/browser/conftest.py``), so both measure the same way. It lives here,
beside the benchmarks, so that both import it by name without touching ``sys.path``: a script's own folder is first
on ``sys.path``, and pytest's ``pythonpath`` setting (``pyproject.toml``) adds this folder for the tests.

The Lab server runs in a temporary directory with its own config, data, runtime, settings and
workspace directories. Its kernels import ``nbcallbacks`` from this checkout (``PYTHONPATH`` is set
to the repository root for the server, and kernels inherit it), so they exercise the working tree.

Chromium comes from the system (``/usr/bin/chromium``, or ``NBC_CHROMIUM``); Playwright cannot
download browsers here.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from nbformat.sign import NotebookNotary

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
BUNDLE = REPO / "nbcallbacks" / "static" / "widget.js"
CHROMIUM = Path(os.environ.get("NBC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_TIMEOUT = 60.0
KERNEL_READY_TIMEOUT_MS = 60_000
CELL_TIMEOUT_MS = 180_000


class LabError(RuntimeError):
    """The Lab server could not be started."""


class CellError(AssertionError):
    """A notebook cell raised; the message carries the Python traceback."""


# The page records every comm message arriving on a kernel websocket, with the browser's own clock.
# JupyterLab speaks the v1.kernel.websocket.jupyter.org framing (binary: a count of offsets, the
# offsets, then channel, header, parent header, metadata, content, buffers) or the legacy JSON text
# framing.
WS_RECORDER_JS = r"""
(() => {
  if (window.__nbcWsInstalled) { return; }
  window.__nbcWsInstalled = true;
  window.__nbcComm = [];
  const decoder = new TextDecoder();
  const record = (channel, header, content, size) => {
    if (!header || header.msg_type !== 'comm_msg') { return; }
    const data = (content && content.data) || {};
    window.__nbcComm.push({
      t: Date.now(), channel, comm_id: content ? content.comm_id : null,
      method: data.method || null, size,
    });
  };
  const onMessage = (event) => {
    try {
      const payload = event.data;
      if (typeof payload === 'string') {
        const msg = JSON.parse(payload);
        record(msg.channel, msg.header, msg.content, payload.length);
        return;
      }
      if (!(payload instanceof ArrayBuffer)) { return; }
      const view = new DataView(payload);
      const count = Number(view.getBigUint64(0, true));
      const offsets = [];
      for (let i = 0; i < count; i++) {
        offsets.push(Number(view.getBigUint64(8 * (i + 1), true)));
      }
      const part = (i) => decoder.decode(
        new Uint8Array(payload, offsets[i], offsets[i + 1] - offsets[i]));
      const channel = part(0);
      if (channel !== 'iopub') { return; }
      const header = JSON.parse(part(1));
      if (header.msg_type !== 'comm_msg') { return; }
      record(channel, header, JSON.parse(part(4)), payload.byteLength);
    } catch (err) {
      window.__nbcWsErrors = (window.__nbcWsErrors || 0) + 1;
    }
  };
  const Native = window.WebSocket;
  class RecordingWebSocket extends Native {
    constructor(...args) {
      super(...args);
      if (String(args[0]).includes('/api/kernels/')) {
        this.addEventListener('message', onMessage);
      }
    }
  }
  window.WebSocket = RecordingWebSocket;
})();
"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


@dataclass
class LabServer:
    """A running JupyterLab server in a temporary root directory."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    base: Path
    _workspaces: Iterator[int] = field(default_factory=itertools.count)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API; returns the decoded JSON answer (or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a local http URL we built
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - same
            raw = response.read()
        return json.loads(raw) if raw else None

    def shutdown_kernels(self) -> None:
        """End every session and kernel, so that each test starts from a quiet server."""
        with contextlib.suppress(urllib.error.URLError, OSError):
            for session in self.api("GET", "/api/sessions"):
                with contextlib.suppress(urllib.error.URLError, OSError):
                    self.api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self.api("GET", "/api/kernels"):
                with contextlib.suppress(urllib.error.URLError, OSError):
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def lab_url(self, notebook: str) -> str:
        """URL opening ``notebook`` in a fresh workspace (no layout restored from earlier tests)."""
        workspace = f"t{next(self._workspaces)}"
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        """URL opening ``notebook`` in Jupyter Notebook 7 (served by the same server)."""
        return f"{self.url}/notebooks/{notebook}?token={self.token}"

    @property
    def data_dir(self) -> Path:
        """The server's ``JUPYTER_DATA_DIR`` (it holds the notebook-signature secret and database)."""
        return self.base / "data"

    def trust(self, path: Path) -> None:
        """Sign a notebook as this server's user would with ``jupyter trust``.

        Lab renders rich outputs that are not sanitizable (widgets among them) only for trusted
        notebooks; a notebook executed elsewhere (nbclient, nbconvert) is not trusted until signed.
        """

        notebook = nbformat.read(path, as_version=4)
        NotebookNotary(data_dir=str(self.data_dir)).sign(notebook)

    def stop(self) -> None:
        """Shut kernels down, stop the server (terminate, then kill) and remove its directory."""
        if self.process.poll() is None:
            self.shutdown_kernels()
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log, for failure messages."""
        with contextlib.suppress(OSError):
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""


def _lab_settings(settings: Path) -> None:
    """User settings that keep screens quiet and deterministic."""
    write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    )
    write_json(
        settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings",
        {"theme": "JupyterLab Light", "adaptive-theme": False},
    )
    write_json(
        settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
        {"windowingMode": "none"},
    )


class LabPage:
    """One browser page on the Lab server, with the notebook actions the tests need."""

    def __init__(self, page: Any, server: LabServer) -> None:
        """Wrap a Playwright page."""
        self.page = page
        self.server = server
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.errors_at_open = 0
        """Page errors raised while the notebook was loading (the front end's own, not the widget's)."""
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.page_errors.append(f"{error}\n{error.stack}"))

    # notebooks -----------------------------------------------------------------------------------
    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Create ``name`` in the server's root with one code cell per source string."""
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = self.server.root / name
        nbformat.write(notebook, path)
        return path

    def open(self, name: str, *, wait_kernel: bool = True, notebook7: bool = False) -> None:
        """Open a notebook in Lab (or Notebook 7); wait until it is current (and its kernel idle)."""
        self.page.goto(self.server.notebook7_url(name) if notebook7 else self.server.lab_url(name))
        self.page.wait_for_function(
            """(name) => {
              const app = window.jupyterapp;
              const panel = app && app.shell && app.shell.currentWidget;
              return !!(panel && panel.context && panel.context.path === name && panel.content
                        && panel.context.isReady);
            }""",
            arg=name,
            timeout=KERNEL_READY_TIMEOUT_MS,
        )
        if wait_kernel:
            self.wait_kernel_idle()
        self.errors_at_open = len(self.page_errors)

    def new_notebook(self, name: str, cells: list[str], *, notebook7: bool = False) -> None:
        """Write a notebook and open it, kernel ready."""
        self.write_notebook(name, cells)
        self.open(name, notebook7=notebook7)

    def wait_kernel_idle(self, timeout_ms: int = KERNEL_READY_TIMEOUT_MS) -> None:
        """Wait until the current notebook's kernel reports idle."""
        self.page.wait_for_function(
            """() => {
              const ctx = window.jupyterapp.shell.currentWidget.sessionContext;
              const kernel = ctx && ctx.session && ctx.session.kernel;
              return !!(kernel && kernel.status === 'idle'
                        && kernel.connectionStatus === 'connected');
            }""",
            timeout=timeout_ms,
        )

    def kernel_status(self) -> str:
        """The current kernel's status (``idle``, ``busy``, ...)."""
        return str(
            self.page.evaluate(
                """() => {
                  const ctx = window.jupyterapp.shell.currentWidget.sessionContext;
                  return ctx.session && ctx.session.kernel ? ctx.session.kernel.status : 'none';
                }"""
            )
        )

    # cells ---------------------------------------------------------------------------------------
    def start_cell(self, index: int) -> None:
        """Start running cell ``index`` and return at once; ``wait_cell`` waits for it."""
        self.page.evaluate(
            """(index) => {
              const app = window.jupyterapp;
              const notebook = app.shell.currentWidget.content;
              notebook.activeCellIndex = index;
              notebook.deselectAll();
              window.__nbcCellDone = false;
              window.__nbcCellResult = null;
              app.commands.execute('notebook:run-cell').then(
                (result) => { window.__nbcCellResult = String(result); },
                (error) => { window.__nbcCellResult = 'error: ' + String(error); },
              ).finally(() => { window.__nbcCellDone = true; });
            }""",
            index,
        )

    def cell_running(self) -> bool:
        """True while the cell started by ``start_cell`` has not finished."""
        return not self.page.evaluate("() => window.__nbcCellDone === true")

    def wait_cell(
        self, index: int, timeout_ms: int = CELL_TIMEOUT_MS, *, allow_error: bool = False
    ) -> list[dict[str, Any]]:
        """Wait for the started cell to finish; return its outputs, failing on a Python error."""
        self.page.wait_for_function("() => window.__nbcCellDone === true", timeout=timeout_ms)
        outputs = self.cell_outputs(index)
        errors = [output for output in outputs if output.get("output_type") == "error"]
        if errors and not allow_error:
            error = errors[0]
            trace = "\n".join(error.get("traceback", []))
            msg = f"cell {index} raised {error.get('ename')}: {error.get('evalue')}\n{trace}"
            raise CellError(msg)
        return outputs

    def run_cell(self, index: int, timeout_ms: int = CELL_TIMEOUT_MS) -> list[dict[str, Any]]:
        """Run cell ``index`` to completion; return its outputs."""
        self.start_cell(index)
        return self.wait_cell(index, timeout_ms)

    def run_cells(self, indexes: range | list[int]) -> None:
        """Run several cells in order."""
        for index in indexes:
            self.run_cell(index)

    def cell_outputs(self, index: int) -> list[dict[str, Any]]:
        """The outputs of cell ``index`` as nbformat dictionaries."""
        outputs = self.page.evaluate(
            """(index) => {
              const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
              return cell.model.outputs.toJSON();
            }""",
            index,
        )
        return list(outputs)

    def cell_text(self, index: int) -> str:
        """Stream and plain-text output of cell ``index``, joined (a rich output on lines of its own)."""
        parts: list[str] = []
        for output in self.cell_outputs(index):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
                parts.append(text if isinstance(text, str) else "".join(text))
            elif "data" in output and "text/plain" in output["data"]:
                text = output["data"]["text/plain"]
                text = text if isinstance(text, str) else "".join(text)
                if parts and not parts[-1].endswith("\n"):
                    parts.append("\n")
                parts.append(text + "\n")
        return "".join(parts)

    def cell_json(self, index: int) -> Any:
        """The last JSON document that cell ``index`` printed on a line of its own."""
        text = self.cell_text(index)
        for line in reversed(text.splitlines()):
            if line.startswith(("{", "[")):
                return json.loads(line)
        msg = f"cell {index} printed no JSON line:\n{text[-2000:]}"
        raise CellError(msg)

    def cell_locator(self, index: int) -> Any:
        """The DOM node of cell ``index`` (its output area included)."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    # appearance ----------------------------------------------------------------------------------
    def set_theme(self, theme: str) -> None:
        """Switch the Lab theme (``JupyterLab Light`` / ``JupyterLab Dark``); wait until applied."""
        light = "true" if "Light" in theme else "false"
        self.page.evaluate("(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
        self.page.wait_for_function(
            "(light) => document.body.dataset.jpThemeLight === light", arg=light, timeout=30_000
        )
        self.page.wait_for_timeout(300)

    # comm traffic --------------------------------------------------------------------------------
    def comm_messages(self) -> list[dict[str, Any]]:
        """Every iopub comm message the page received so far: time (ms), comm id, method, size."""
        return list(self.page.evaluate("() => window.__nbcComm || []"))

    def comm_mark(self) -> int:
        """The number of comm messages received so far (to count only what follows)."""
        return int(self.page.evaluate("() => (window.__nbcComm || []).length"))

    def errors_since_open(self) -> list[str]:
        """Uncaught page errors since the notebook finished opening (widget code runs only then)."""
        return self.page_errors[self.errors_at_open :]

    def now_ms(self) -> float:
        """The browser's clock (``Date.now()``)."""
        return float(self.page.evaluate("() => Date.now()"))


def start_lab(base: Path | None = None) -> LabServer:
    """Start a JupyterLab isolated from the user's Jupyter directories; wait until it answers.

    Only config, data and runtime directories are isolated: labextensions installed with Python
    packages (anywidget, jupyterlab_widgets) live under ``sys.prefix/share/jupyter``, which stays on
    the search path. Stop it with ``LabServer.stop``.
    """
    base = base if base is not None else Path(tempfile.mkdtemp(prefix="nbc-lab-"))
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    settings = base / "settings"
    _lab_settings(settings)
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("ANYWIDGET_HMR", None)
    port = free_port()
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--ServerApp.port_retries=0",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    log = base / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, process, log, base)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            server.stop()
            msg = f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}"
            raise LabError(msg)
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            if server.api("GET", "/api/status") is not None:
                return server
        if time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            msg = f"JupyterLab did not answer within {SERVER_START_TIMEOUT}s:\n{tail}"
            raise LabError(msg)
        time.sleep(0.2)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's sync API) with flags that keep it offline and quiet."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - Playwright only once a browser is wanted

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@contextlib.contextmanager
def browser_context(browser: Any) -> Iterator[Any]:
    """A browser context whose pages record kernel comm traffic; its HTTP cache spares reloading Lab."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.add_init_script(WS_RECORDER_JS)
    try:
        yield context
    finally:
        with contextlib.suppress(Exception):
            context.close()


@contextlib.contextmanager
def lab_page(server: LabServer, context: Any) -> Iterator[LabPage]:
    """A fresh page in ``context`` (see ``browser_context``); every kernel is shut down when it closes."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield LabPage(page, server)
    finally:
        with contextlib.suppress(Exception):
            page.close()
        server.shutdown_kernels()


@contextlib.contextmanager
def lab_session() -> Iterator[LabPage]:
    """A Lab server, a headless Chromium and one page on it, for a script (the tests use the fixtures instead)."""
    server = start_lab()
    try:
        with chromium() as browser, browser_context(browser) as context, lab_page(server, context) as page:
            yield page
    finally:
        server.stop()
