"""`synthface app`: start the Streamlit server on 127.0.0.1 and print the address."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).with_name("main.py")
MAX_UPLOAD_MB = 500  # a ResNet-50 checkpoint is ~100 MB with its optimizer state; photos are capped in pixels instead


class LaunchError(RuntimeError):
    """The app cannot start (Streamlit missing, port taken): the message says how to fix it."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def streamlit_command(port: int, host: str = "127.0.0.1", masks: tuple[Path, ...] = (), checkpoint: Path | None = None,
                      data: Path | None = None, device: str = "cpu") -> list[str]:
    """The `python -m streamlit run` command line: local only, no browser opened, no usage statistics sent."""
    command = [
        sys.executable, "-m", "streamlit", "run", str(MAIN),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", host,
        "--browser.serverPort", str(port),
        "--theme.base", "light",
        "--client.toolbarMode", "viewer",  # no "Deploy" button: the app is local
        "--",
    ]
    for folder in masks:
        command += ["--masks", str(Path(folder).expanduser().resolve())]
    if checkpoint is not None:
        command += ["--checkpoint", str(Path(checkpoint).expanduser().resolve())]
    if data is not None:
        command += ["--data", str(Path(data).expanduser().resolve())]
    command += ["--device", device]
    return command


def check_installed() -> None:
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise LaunchError("the app needs the optional extra: pip install 'synthface[app]' "
                          "(or pip install -e \".[app]\" in a checkout)") from None


def launch(port: int | None = None, host: str = "127.0.0.1", masks: tuple[Path, ...] = (), checkpoint: Path | None = None,
           data: Path | None = None, device: str = "cpu", open_browser: bool = False) -> int:
    """Run the app until Ctrl-C; returns the server's exit code."""
    check_installed()
    if port is None:
        port = free_port(host)
    elif not port_is_free(port, host):
        raise LaunchError(f"port {port} is in use on {host}: choose another with --port, or leave it out to use a free one")
    for folder in masks:
        if not Path(folder).expanduser().is_dir():
            raise LaunchError(f"--masks {folder}: not a folder")
    if checkpoint is not None and not Path(checkpoint).expanduser().is_file():
        raise LaunchError(f"--checkpoint {checkpoint}: no such file")
    url = f"http://{host}:{port}"
    process = subprocess.Popen(streamlit_command(port, host, masks, checkpoint, data, device))
    previous = _stop_on_sigterm()
    try:
        if not wait_until_ready(url, process):
            raise LaunchError(f"the Streamlit server did not start on {url} (its messages are above)")
        print(f"synthface app: {url}  (Ctrl-C to stop)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(process)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm():
    """Make SIGTERM (a service manager, a test's teardown) stop the server like Ctrl-C, instead of
    killing only this process and leaving the server running. Returns the previous handler."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


def stop_server(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the server: SIGTERM, then SIGKILL if it is still running after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_ready(url: str, process: subprocess.Popen | None = None, timeout: float = 90.0) -> bool:
    """Poll Streamlit's health endpoint until it answers; False if the process exits or time runs out."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False
