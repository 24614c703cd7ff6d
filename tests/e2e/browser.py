"""Headless Chromium for the end-to-end tests: Debian's ``chromium`` package (installed here when
missing), driven by Playwright, logged in to Airflow with the session cookie its UI uses."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
#: Flags for a closed network and a root user (no sandbox), as the machine notes prescribe.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> str:
    """The Chromium binary, installing Debian's package first when it is missing."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found:
        return found
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # the package lists may be stale on a fresh machine
        update = ["apt-get", "update", "-q"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get", "update", "-q"]
        subprocess.run(update, env=env, capture_output=True, timeout=600)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not os.path.exists(CHROMIUM):
        raise RuntimeError(f"could not install Debian's chromium package ({' '.join(command)}):\n{done.stderr[-2000:]}")
    return CHROMIUM


@contextmanager
def logged_in_page(base_url: str, token: str) -> Iterator[Any]:
    """A Playwright page in headless Chromium carrying Airflow's ``_token`` session cookie."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": "_token", "value": token, "url": base_url}])
            yield context.new_page()
        finally:
            browser.close()
