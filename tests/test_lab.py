"""Live widgets in a real JupyterLab: start a server, run a chapter, move a control, see the figure change.

A copy of one chapter notebook (COMPANION_LAB_NOTEBOOK, default the few-shot chapter: quick, and its
explorable figure has a menu) runs in quick mode in a JupyterLab on 127.0.0.1 (free port, random token)
driven by headless Chromium. Every wait is bounded; the server is shut down at the end.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "book" / os.environ.get("COMPANION_LAB_NOTEBOOK", "05_worst_case_fewshot.ipynb")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
JUPYTER = Path(sys.executable).with_name("jupyter")

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float, what: str, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture()
def lab(tmp_path):
    if not JUPYTER.exists():
        pytest.fail("jupyterlab is not installed: run `make install` (it is in requirements.lock)")
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)  # outputs and autosaves stay out of book/
    shutil.copytree(ROOT / "results", tmp_path / "results")  # records the chapter reads; writes stay here
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell stays in the page (no windowing), so their prompts can be read
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, COMPANION_MODE="quick", TQDM_DISABLE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               COMPANION_RESULTS=str(tmp_path / "results"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    env.pop("COMPANION_STATIC_FIGURES", None)  # live widgets, not the book's static frames
    cmd = [str(JUPYTER), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: run commands, not menu clicks
    if os.geteuid() == 0:  # containers and CI often run as root
        cmd.append("--allow-root")
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up():
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        try:
            return urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).status == 200
        except OSError:
            return False

    try:
        _wait(up, 60, "the JupyterLab server")
        yield base, token, work
    finally:
        try:  # shut down through the API (kernels too), then make sure the process is gone
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST"),
                                   timeout=5)
        except OSError:
            pass
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


PROMPTS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
  .map(p => p.textContent.trim())"""


def test_chapter_runs_in_jupyterlab_and_its_figure_follows_the_controls(lab):
    from playwright.sync_api import sync_playwright

    base, token, work = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        # only the local server: the page must not need the network
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith((base, "data:", "blob:", "about:"))
                      else r.abort())
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        try:
            tab.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", wait_until="domcontentloaded")
            tab.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90_000)
            _wait(lambda: "Idle" in tab.inner_text("#jp-main-statusbar"), 90, "an idle kernel")
            n_code = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
            _wait(lambda: len(tab.evaluate(PROMPTS)) == n_code, 60, "every cell on the page")

            def run_all():
                tab.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            def started():
                return any(p != "[ ]:" for p in tab.evaluate(PROMPTS))

            run_all()
            for _ in range(2):  # a click before the kernel is really ready can be lost: retry (bounded)
                try:
                    _wait(started, 20, "the first cell to start")
                    break
                except BaseException:
                    run_all()

            def finished():
                prompts = tab.evaluate(PROMPTS)
                done = [p for p in prompts if p.startswith("[") and p[1:-2].isdigit()]
                return len(prompts) == n_code and len(done) == n_code

            try:
                _wait(finished, 240, f"all {n_code} cells of {NOTEBOOK.name} to run", every=1)
            except BaseException:
                shot = ROOT / "artifacts" / "lab-timeout.png"
                shot.parent.mkdir(exist_ok=True)
                tab.screenshot(path=str(shot))
                print("prompts:", tab.evaluate(PROMPTS), "screenshot:", shot)
                raise
            outputs = tab.inner_text(".jp-Notebook")
            assert "Traceback" not in outputs, f"{NOTEBOOK.name} raised in JupyterLab:\n{outputs[-3000:]}"

            # the explorable figure: a live ipywidgets box with a menu and an image output
            box = tab.locator(".jp-OutputArea .widget-vbox:has(.widget-dropdown select):has(img)").first
            box.wait_for(timeout=60_000)
            menu, img = box.locator(".widget-dropdown select").first, box.locator("img").first
            before = img.get_attribute("src")
            options = menu.locator("option").count()
            assert options >= 2, "the explorable figure's menu has one choice"
            current = menu.evaluate("s => s.selectedIndex")
            menu.select_option(index=0 if current == options - 1 else options - 1)
            _wait(lambda: box.locator("img").count() and box.locator("img").first.get_attribute("src") != before,
                  90, "the figure to change after moving the menu")
        finally:
            context.close()
            browser.close()
