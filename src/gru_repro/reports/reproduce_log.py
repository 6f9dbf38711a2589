"""The wall-clock record of scripts/reproduce.py: <runs>/protocols/<name>.reproduce.json.

The reports' "total time" line reads it (reports/build.py). A full sweep runs for days and is
often ended by SIGKILL (a job's time limit, a machine shut down), when no handler runs; so the
record is kept up to date while an invocation runs instead of being written once when it ends.
`start` counts the invocation, and every `beat` (one each ``BEAT_SECONDS`` from a background
thread, and a last one at the end) adds the seconds since the previous beat. A killed
invocation loses at most one interval.

Each beat re-reads the file and adds its own seconds to what is there, so two invocations on one
runs root (two experiments trained side by side) add up instead of overwriting each other; the
read-add-write is not locked across processes, a window of milliseconds per minute.

The file (keys kept from the first version of the record):
    total_seconds  float, wall clock of all invocations together
    invocations    int, how many invocations started
    started        the first invocation's start (UTC, minutes); last_started: the latest one's
    command, machine  the latest invocation's command line and machine
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.provenance import machine_description, utc_now
from gru_repro.reports.protocol import reproduce_log_path

BEAT_SECONDS = 60.0  # the most wall time a killed invocation leaves out of the record


class ReproduceLog:
    """This invocation's share of a protocol's record; ``clock`` is injectable for tests."""

    def __init__(
        self,
        runs_root: str | Path,
        name: str,
        command: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = reproduce_log_path(runs_root, name)
        self.command = command
        self._clock = clock
        self._last: float | None = None  # clock() at the previous beat; None before start
        self._lock = threading.Lock()  # the background thread and the caller both beat

    def _read(self) -> dict:
        """The record so far; an unreadable one raises (a new one would overwrite its history)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"total_seconds": 0.0}  # the first invocation on this runs root

    def _write(self, entry: dict) -> None:
        atomic_write_text(self.path, json.dumps(entry, indent=2) + "\n")  # creates protocols/

    def start(self) -> None:
        """Count this invocation (its command, machine and start) with no seconds yet."""
        with self._lock:
            entry = self._read()
            now = utc_now()
            entry.setdefault("total_seconds", 0.0)
            entry.setdefault("started", now)
            entry.update(command=self.command, machine=machine_description(), last_started=now)
            entry["invocations"] = int(entry.get("invocations", 0)) + 1
            self._write(entry)
            self._last = self._clock()

    def beat(self) -> None:
        """Add the wall time since the previous beat (or the start) to the record."""
        with self._lock:
            if self._last is None:
                raise RuntimeError("ReproduceLog.beat before start")
            now = self._clock()
            entry = self._read()
            entry["total_seconds"] = float(entry.get("total_seconds", 0.0)) + (now - self._last)
            self._write(entry)
            self._last = now

    @contextmanager
    def beating(self, every: float = BEAT_SECONDS) -> Iterator[ReproduceLog]:
        """Start, beat every ``every`` seconds in a daemon thread, and beat once more on exit."""
        self.start()
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                self.beat()

        thread = threading.Thread(target=loop, name="reproduce-log", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.beat()
