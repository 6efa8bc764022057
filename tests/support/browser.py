"""Open a page in a real headless browser (Debian's `chromium`, installed by `make test`) and see what it did.

    seen = browse(Path("report.html"), screenshot=tmp_path / "report.png")
    seen.dom          # the document after the browser loaded it (chromium --dump-dom)
    seen.requests     # every request the page tried to send to the network (should be none)

Every request leaves through a proxy that is a socket of ours: it answers nothing and records what was
asked. A page that loads anything from the network (a CDN script, a font, an image) shows up there. The
browser's own background traffic is switched off by its flags where a flag exists; what a headless chromium
still sends on its own (its component updater and its account check, to the hosts in `BROWSER_OWN`) is
told apart by host and kept in `Seen.browser_own`, never mixed with the page's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUIET = ["--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--mute-audio",
         "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--no-pings",
         "--disable-breakpad", "--disable-features=OptimizationHints,OptimizationGuideModelDownloading,MediaRouter,"
         "Translate,AutofillServerCommunication,NetworkTimeServiceQuerying,CertificateTransparencyComponentUpdater,"
         "SafeBrowsing,InterestFeedContentSuggestions,SignInProfileCreation,DiceWebSigninInterception",
         "--safebrowsing-disable-auto-update", "--disable-signin-frame-client-certs",
         "--proxy-bypass-list=<-loopback>"]


BROWSER_OWN = frozenset({"update.googleapis.com", "accounts.google.com", "clients2.google.com"})


def _host(request_line: str) -> str:
    """The host a proxied request line names (`CONNECT host:443 ...` or `GET http://host/path ...`)."""
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else ""
    return urlsplit(target if "://" in target else f"//{target}").hostname or ""


@dataclass
class Seen:
    dom: str
    requests: list[str] = field(default_factory=list)  # what the page asked for
    browser_own: list[str] = field(default_factory=list)  # the browser's own background requests
    screenshot: Path | None = None


class _Recorder:
    """A proxy that records the first line of every request and closes the connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    first = "(unreadable request)"
                self.requests.append(first or "(empty request)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def browse(page: Path, *, screenshot: Path | None = None, window: str = "1400,2400",
           timeout: float = 120.0) -> Seen:
    """Load `page` (a local file) headless; its DOM after load, the requests it tried, and a screenshot."""
    assert CHROMIUM, "chromium is not installed (make test installs Debian's chromium)"
    recorder = _Recorder()
    profile = Path(tempfile.mkdtemp(prefix="kubetune-chromium-"))
    base = [CHROMIUM, *QUIET, f"--proxy-server={recorder.url}", f"--user-data-dir={profile}",
            f"--window-size={window}"]
    if os.geteuid() == 0:
        base.append("--no-sandbox")  # chromium refuses to run as root with its sandbox
    url = page.resolve().as_uri()
    try:
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout,
                             check=True).stdout
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=timeout,
                           check=True)
    finally:
        recorder.close()
        shutil.rmtree(profile, ignore_errors=True)
    own = [r for r in recorder.requests if _host(r) in BROWSER_OWN]
    return Seen(dom, [r for r in recorder.requests if r not in own], own, screenshot)
