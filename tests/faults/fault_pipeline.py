"""The pipeline as production runs it, for fault tests: live traffic in, `kdp stream` in a subprocess.

`Traffic` produces generated login events (5% malformed) at a steady rate from a background thread, so
the converter is busy whenever a fault strikes. `ConverterProcess` runs `python -m kdp stream`
with its settings in `KDP_*` variables, its log in a file (never a pipe that could fill and block it), and
can be killed with SIGKILL or stopped with SIGTERM like any production process. `LivePipeline` is the two
together for the length of a scenario, with the converter group's progress watched from outside.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from fault_ledger import GroupProgress
from registry_io import register_output_schema
from scenario_settings import process_environment as environment

from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import GenerateSummary, generate
from streaming.settings import Settings

MALFORMED_SHARE = 0.05


class Traffic:
    """Login events produced to the source topic at `rate` per second until `stop()` (or `count`)."""

    def __init__(self, settings: Settings, rate: float, seed: int, count: int | None = None) -> None:
        self._stop = threading.Event()
        self.summary: GenerateSummary | None = None
        factory = EventFactory(seed, IrregularityRates.with_malformed(MALFORMED_SHARE))

        def produce() -> None:
            # Generous timeouts: traffic outlives every fault a test inflicts (up to all brokers frozen).
            config = {**settings.kafka_config(), "message.timeout.ms": 300_000}
            self.summary = generate(
                config, settings.source_topic, factory, rate=rate, count=count, stop=self._stop,
                progress_every_s=0, flush_timeout_s=300,
            )  # fmt: skip

        self._thread = threading.Thread(target=produce, name="fault-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> GenerateSummary:
        self._stop.set()
        self._thread.join(timeout=320)
        assert self.summary is not None, "the traffic thread did not finish"
        return self.summary


class ConverterProcess:
    """One `kdp stream` process; `instance` is its stable name (the exactly-once transactional id suffix).

    `prefix` goes before the command, e.g. `ip netns exec <name>` to run it in a network namespace.
    """

    def __init__(
        self, settings: Settings, instance: str, log_file: Path, *arguments: str, prefix: Sequence[str] = ()
    ) -> None:
        self.log_file = log_file
        # -X faulthandler: a SIGABRT makes a stuck process print every thread's stack into its log.
        command = [*prefix, sys.executable, "-X", "faulthandler", "-m", "kdp", "stream"]
        command += ["--instance", instance, "--log-every", "1"]
        with log_file.open("ab") as log:
            log.write(f"--- {' '.join(command[1:] + list(arguments))}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*command, *arguments],
                env=environment(settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no chance to finish a batch, abort a transaction or leave the group."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM (finish the batch, then stop); the exit code."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


class LivePipeline:
    """Traffic into the source topic and one `kdp stream` converting it, for the length of a scenario.

    The converter is supervised as a Kubernetes Deployment would have it: a process that exits on its
    own is started again (and counted in `restarts`). Use as a context manager: leaving it stops the
    traffic and the converter whatever happened.
    """

    def __init__(
        self,
        settings: Settings,
        log_file: Path,
        rate: float,
        seed: int = 7,
        instance: str = "fault",
        prefix: Sequence[str] = (),
    ) -> None:
        self.settings, self.log_file, self.instance, self.prefix = settings, log_file, instance, prefix
        register_output_schema(settings)  # the control plane's part, before any converter starts
        self.progress = GroupProgress(settings)
        self.traffic = Traffic(settings, rate, seed)
        self.restarts: list[int] = []
        """Exit codes of the converter processes that ended on their own and were started again."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.converter = ConverterProcess(settings, instance, log_file, prefix=prefix)
        self._supervisor = threading.Thread(target=self._supervise, name="fault-supervisor", daemon=True)
        self._supervisor.start()

    def __enter__(self) -> LivePipeline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        self._supervisor.join()
        self.traffic.stop()
        self.converter.stop()
        self.progress.close()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                if not self.converter.alive and not self._stopping.is_set():
                    self.restarts.append(self.converter.process.returncode)
                    self.converter = ConverterProcess(self.settings, self.instance, self.log_file, prefix=self.prefix)

    def restart_converter(self, kill: bool = True) -> int:
        """Kill (or stop) the converter and start it again under the same name; the group's commit at the stop."""
        with self._lock:
            if kill:
                self.converter.kill()
            else:
                self.converter.stop()
            committed = self.progress.committed()
            self.converter = ConverterProcess(self.settings, self.instance, self.log_file, prefix=self.prefix)
        return committed

    def finish(self, timeout: float = 240.0) -> GenerateSummary:
        """Stop the traffic, let the converter catch up, stop it gracefully; what the traffic delivered."""
        produced = self.traffic.stop()
        self.progress.wait_caught_up(timeout)
        self._stopping.set()
        self._supervisor.join()
        exit_code = self.converter.stop()
        assert exit_code == 0, f"kdp stream exited with {exit_code}:\n{self.converter.log()[-4000:]}"
        return produced
