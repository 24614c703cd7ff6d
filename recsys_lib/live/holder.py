"""The model a live service answers with, swapped for a new champion when the alias moves."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Protocol

from recsys_lib.live.source import Loaded, Target

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where :class:`ModelHolder` gets its model; ``name`` appears in logs and errors. Implemented
    by :class:`~recsys_lib.live.source.ChampionSource` and
    :class:`~recsys_lib.live.source.BundleFolderSource`."""

    name: str

    def target(self) -> Target | None:
        """What should be served now, None when there is nothing to serve yet; a target equal to the
        served one means no reload. May raise when the registry or S3 cannot be reached."""
        ...

    def load(self, target: Target) -> Loaded:
        """``target`` loaded and ready to answer; raises when any part of it cannot be read."""
        ...


class ModelHolder:
    """Holds the loaded champion. :meth:`refresh` asks ``source`` whether the alias moved or a
    newer export was published (fresher history and catalogue) and loads what changed. A load that
    fails keeps the model being served and says why in :attr:`last_error` (shown by ``/healthz``);
    the next poll tries again. :meth:`start` polls every ``poll_seconds`` in a daemon thread."""

    def __init__(self, source: Source, poll_seconds: float):
        self.source, self.poll_seconds = source, poll_seconds
        self.current: Loaded | None = None
        self.last_error: str | None = None
        self.last_checked: datetime | None = None
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load what the source names if it is not what is served; True when something new was
        swapped in."""
        with self._refreshing:
            self.last_checked = datetime.now(UTC)
            try:
                target = self.source.target()
                if target is None:
                    self.last_error = None if self.current else f"{self.source.name} has no champion yet"
                    return False
                if self.current is not None and self.current.target == target:
                    self.last_error = None
                    return False
                loaded = self.source.load(target)
            except Exception as exc:  # any failure: keep serving what we have, say so, retry next poll
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("could not load the champion of %s (%s); serving %s", self.source.name, exc, self._serving())
                return False
            before, self.current, self.last_error = self._serving(), loaded, None
            log.info(
                "now serving %s version %s with the features of %s, user vectors %s (was %s)",
                loaded.name,
                loaded.version,
                target.features_dt or "its training",
                loaded.user_vectors or "computed per request",
                before,
            )
            return True

    def start(self) -> None:
        """Refresh now, then every ``poll_seconds`` until :meth:`stop`."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="champion-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the polling thread, waiting up to 10 s for a refresh in progress; the loaded model stays served."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def _serving(self) -> str:
        if self.current is None:
            return "nothing"
        return f"version {self.current.version} ({self.current.target.features_dt or 'training'} features)"
