"""Firefox for the inspector's smoke test: the system's firefox-esr, driven over Marionette
(the remote protocol built into Firefox) by Mozilla's ``marionette-driver`` client.

Playwright drives only its own Firefox build, which cannot be downloaded here, so the stock
browser is started by hand: headless, with a fresh profile whose preferences open Marionette
on a free port (written back to the profile's ``MarionetteActivePort``) and send every request
for another host to a closed local port, so a page that reached beyond loopback would fail.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

with warnings.catch_warnings():  # mozinfo asks distro for linux_distribution(), which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from marionette_driver import By, Wait
    from marionette_driver.marionette import Marionette

WAIT_S = 30  # an upper bound on waiting for the page, not a speed requirement
PREFS = {
    "marionette.port": 0,  # any free port: tests run side by side
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.startup.homepage_override.mstone": "ignore",
    "network.proxy.type": 1,  # everything through a proxy that is not there, but loopback
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "localhost, 127.0.0.1",
}


def firefox_binary() -> str | None:
    return shutil.which("firefox-esr") or shutil.which("firefox")


def _pref(name: str, value: object) -> str:
    literal = str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')
    return f"user_pref({name!r}, {literal});".replace("'", '"')


@contextmanager
def firefox(binary: str) -> Iterator[Marionette]:
    """A headless Firefox with a fresh profile, and a Marionette session on it."""
    with tempfile.TemporaryDirectory(prefix="engramdb-ff-") as profile:
        Path(profile, "user.js").write_text("\n".join(_pref(k, v) for k, v in PREFS.items()) + "\n")
        proc = subprocess.Popen([binary, "--marionette", "--headless", "--no-remote", "-profile", profile],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            client = Marionette(host="127.0.0.1", port=_port(Path(profile, "MarionetteActivePort"), proc))
            client.start_session()
            client.set_window_rect(width=1280, height=860)
            yield client
            client.delete_session()
        finally:
            proc.terminate()
            proc.wait(20)


def _port(written: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if written.exists() and written.read_text().strip():
            return int(written.read_text())
        if proc.poll() is not None:
            raise RuntimeError(f"firefox exited with {proc.returncode} before opening Marionette")
        time.sleep(0.1)
    raise RuntimeError("firefox did not open Marionette in time")


class Tab:
    """The few page actions the smoke test needs, each waiting as Playwright's would."""

    def __init__(self, client: Marionette) -> None:
        self.client = client

    def wait(self, check: Callable[[], Any], message: str) -> Any:
        return Wait(self.client, timeout=WAIT_S, interval=0.1).until(lambda _: check(), message=message)

    def text(self, css: str) -> str:
        """The visible text of every element matching ``css``, joined (empty when none)."""
        found = self.client.find_elements(By.CSS_SELECTOR, css)
        return " ".join(e.text for e in found)

    def wait_text(self, css: str, wanted: str) -> None:
        self.wait(lambda: wanted in self.text(css), f"{wanted!r} never showed in {css}")

    def fill(self, css: str, value: str) -> None:
        element = self.wait(lambda: self._displayed(css), f"no {css} to fill")
        element.clear()
        element.send_keys(value)

    def click(self, css: str) -> None:
        self.wait(lambda: self._displayed(css), f"no {css} to click").click()

    def _displayed(self, css: str) -> Any:
        found = [e for e in self.client.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        return found[0] if found else None

    def foreign_requests(self) -> list[str]:
        """Every resource the page loaded from another origin (none: it works offline)."""
        script = "return performance.getEntriesByType('resource').map((e) => e.name)"
        origin = self.client.execute_script("return location.origin")
        return [url for url in self.client.execute_script(script) if not url.startswith(origin)]
