"""Every `KDP_*` setting, read from the environment in one place and validated: the data plane's, and the
two paths where the control plane keeps its insights (used by `orchestration.defs.resources`).

Contract: `Settings.from_env()` either returns a complete, consistent `Settings` or raises
`SettingsError` naming the offending environment variable and what it accepts. Nothing else in
the code base reads `os.environ` for pipeline settings, so the names below are the whole
configuration surface (docker-compose, Dagster resources and the CLI use the same names).

Security settings are passed straight to librdkafka's names; secrets never appear in `repr()` or
in error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from streaming import topics

DeliveryMode = Literal["at-least-once", "exactly-once"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("at-least-once", "exactly-once")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

#: Units of a duration setting such as `KDP_MAX_EVENT_AGE`, in milliseconds.
DURATION_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
UNLIMITED = "unlimited"

DEFAULT_COMMIT_INTERVAL_MS = 20
"""Chosen from the cadence table measured with `make bench` (docs/converter.md#exactly-once-transaction-cadence):
an interval adds about half itself to the p50 and all of itself to the p99, so the 100 ms p99 target leaves room
for a small one only; 20 ms costs about 10 ms at the p50 over a transaction per batch, commits at most once per
20 ms, and on a backlog already puts up to 2 batches in a transaction (a third fewer commits)."""
MAX_COMMIT_INTERVAL_MS = 10_000
"""A third of the transaction timeout (30 s, `streaming.delivery.exactly_once`): the brokers abort a transaction left
open longer, and a commit must have time to finish inside it."""
REGISTRY_TIMEOUT_S = 10
"""Seconds a schema-registry request may take. The registry answers in milliseconds (it keeps schemas in memory)
and clients cache what they read, so only a stuck connection comes near this."""


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


class ServiceUnreachableError(RuntimeError):
    """Kafka or the schema registry did not answer in time; the message names the setting that addresses it
    (KDP_BOOTSTRAP, KDP_REGISTRY_URL). Commands report it in one line, like a bad setting."""


@dataclass(frozen=True)
class Settings:
    bootstrap: str = "localhost:9092"
    registry_url: str = "http://localhost:8081/apis/ccompat/v7"
    registry_user: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None
    source_topic: str = topics.SOURCE_TOPIC
    output_topic: str = topics.OUTPUT_TOPIC
    dlq_topic: str = topics.DEAD_LETTER_TOPIC
    group_id: str = topics.CONVERTER_GROUP
    delivery: DeliveryMode = "at-least-once"
    batch_size: int = 5000
    transactional_id: str = "kdp-converter"
    commit_interval_ms: int = DEFAULT_COMMIT_INTERVAL_MS
    """Exactly-once: how long a transaction stays open, gathering batches, before it commits (0: one
    transaction per batch). Output becomes visible to readers only at the commit, so this is the cadence that
    trades latency (it adds up to this much) for throughput (each commit costs round trips to the transaction
    coordinator). A transaction also commits once it holds 10 batches, and whenever the source has nothing
    more to give. At-least-once ignores it and commits every batch (see `streaming.loop.converter`)."""
    max_event_age: str = UNLIMITED
    """The acceptance window for event times: how far before processing an event may lie, as `<n><unit>`
    (s, m, h, d) or `unlimited`. An older event is dead-lettered as `event_too_old` (kept, replayable),
    never converted and then expired. The default accepts every event back to the transform's 2000-01-01
    floor: outputs are stamped with their processing time, so an old event time no longer shortens their
    retention, and a backfill of old data converts. Narrow it when stale events are an error upstream."""
    metrics_port: int | None = None
    """`kdp stream` serves Prometheus metrics on this port (all interfaces) when set; see streaming.observe.metrics."""
    pushgateway_url: str = ""
    """Dagster conversion runs and dead-letter replays push their counters to this Prometheus Pushgateway
    (`http://host:9091`) at their end and while they run (`streaming.observe.metrics_push`); empty: nothing is pushed.
    A Pushgateway that cannot be reached never fails a run: a warning, and a counter of failed pushes."""
    fast_path: str = "native"
    """The converter's batch path: `native`, the compiled kernel when `make install` could build it (else the
    pure-Python path, logged), or `python`, the pure-Python fused path always (to compare; see
    streaming.conversion.native_path). Both give identical bytes."""

    statistics_file: str | None = None
    """`kdp stream` appends its Kafka clients' librdkafka statistics to this file when set, a line every 5 s per
    client (see streaming.observe.client_statistics): for a diagnosis such as the soak's, not for production."""

    insights_db: str | None = None
    """The DuckDB file the hourly insights are kept in (control plane); unset: `insights/insights.duckdb` under
    the Dagster instance's storage directory (`orchestration.insights.store.database_path`)."""
    insights_reports: str | None = None
    """The folder the daily insight reports are written to; unset: `reports/` beside the insights database
    (`orchestration.insights.report_files.reports_directory`)."""

    @property
    def native_fast_path(self) -> bool:
        """Whether converters built from these settings may use the native kernel (`fast_path`)."""
        return self.fast_path == "native"

    def __post_init__(self) -> None:
        env = {attr: name for name, attr in ENV_NAMES.items()}
        if not self.bootstrap.strip():
            raise SettingsError("KDP_BOOTSTRAP is empty: give host:port[,host:port...] of the brokers")
        if not self.registry_url.startswith(("http://", "https://")):
            raise SettingsError(f"KDP_REGISTRY_URL={self.registry_url!r} must start with http:// or https://")
        if self.delivery not in DELIVERY_MODES:
            raise SettingsError(f"KDP_DELIVERY={self.delivery!r} must be one of {', '.join(DELIVERY_MODES)}")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(
                f"KDP_SECURITY_PROTOCOL={self.security_protocol!r} must be one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError(
                    f"KDP_SASL_MECHANISM={self.sasl_mechanism!r} must be one of {', '.join(SASL_MECHANISMS)} "
                    f"when KDP_SECURITY_PROTOCOL={self.security_protocol}"
                )
            for attr in ("sasl_username", "sasl_password"):
                if not getattr(self, attr):
                    raise SettingsError(f"{env[attr]} is required when KDP_SECURITY_PROTOCOL={self.security_protocol}")
        if not 1 <= self.batch_size <= 1_000_000:
            raise SettingsError(f"KDP_BATCH_SIZE={self.batch_size} must be between 1 and 1000000")
        if not 0 <= self.commit_interval_ms <= MAX_COMMIT_INTERVAL_MS:
            raise SettingsError(
                f"KDP_COMMIT_INTERVAL_MS={self.commit_interval_ms} must be between 0 (a transaction per batch) and "
                f"{MAX_COMMIT_INTERVAL_MS} milliseconds"
            )
        if self.metrics_port is not None and not 1 <= self.metrics_port <= 65535:
            raise SettingsError(f"KDP_METRICS_PORT={self.metrics_port} must be a port number between 1 and 65535")
        if self.pushgateway_url and not self.pushgateway_url.startswith(("http://", "https://")):
            raise SettingsError(f"KDP_PUSHGATEWAY_URL={self.pushgateway_url!r} must start with http:// or https://")
        if self.fast_path not in ("native", "python"):
            raise SettingsError(f"KDP_FAST_PATH={self.fast_path!r} must be native or python")
        for name in ("KDP_SOURCE_TOPIC", "KDP_OUTPUT_TOPIC", "KDP_DLQ_TOPIC", "KDP_GROUP_ID", "KDP_TRANSACTIONAL_ID"):
            if not getattr(self, ENV_NAMES[name]):
                raise SettingsError(f"{name} is empty")
        self.max_event_age_ms  # noqa: B018 - validates KDP_MAX_EVENT_AGE at start
        if len({self.source_topic, self.output_topic, self.dlq_topic}) != 3:
            raise SettingsError("KDP_SOURCE_TOPIC, KDP_OUTPUT_TOPIC and KDP_DLQ_TOPIC must be three different topics")

    @property
    def max_event_age_ms(self) -> int | None:
        """`max_event_age` in milliseconds, or None for `unlimited`; `SettingsError` names the variable."""
        raw = self.max_event_age.strip().lower()
        if raw == UNLIMITED:
            return None
        number, unit = raw[:-1], raw[-1:]
        if unit not in DURATION_UNITS_MS or not number.isdigit() or int(number) == 0:
            raise SettingsError(
                f"KDP_MAX_EVENT_AGE={self.max_event_age!r} must be a positive whole number with a unit "
                f"({', '.join(DURATION_UNITS_MS)}), e.g. 30d or 12h, or {UNLIMITED!r}"
            )
        return int(number) * DURATION_UNITS_MS[unit]

    def oldest_event_ms(self, now_ms: int) -> int:
        """The acceptance window's lower edge for a batch processed at `now_ms` (0: no edge of its own)."""
        age = self.max_event_age_ms
        return 0 if age is None else now_ms - age

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default `os.environ`), then keyword overrides (e.g. CLI flags)."""
        environ = os.environ if environ is None else environ
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, attr in ENV_NAMES.items():
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            if types[attr] in ("int", "int | None"):
                try:
                    values[attr] = int(raw)
                except ValueError:
                    raise SettingsError(f"{name}={raw!r} is not a whole number") from None
            else:
                values[attr] = raw.strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings common to every client: bootstrap and security."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism and self.security_protocol.startswith("SASL"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username or ""
            config["sasl.password"] = self.sasl_password or ""
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config

    def kafka_python_config(self) -> dict[str, object]:
        """The same bootstrap and security as `kafka_config`, in kafka-python's names (its admin client reads the
        log directories and reassignments librdkafka has no API for)."""
        config: dict[str, object] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism and self.security_protocol.startswith("SASL"):
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username or ""
            config["sasl_plain_password"] = self.sasl_password or ""
        if self.ssl_ca_location:
            config["ssl_cafile"] = self.ssl_ca_location
        return config

    def registry_config(self) -> dict[str, str | int]:
        """Settings for confluent_kafka's SchemaRegistryClient, with a bound on every request.

        Without `timeout` the client's HTTP session waits forever on a registry that accepted the connection but
        never answers (CI saw a deserializer's lookup hang for its whole 600 s test timeout). With it a stuck
        request fails after `REGISTRY_TIMEOUT_S` and the client retries it on a new connection (`max.retries`)."""
        config: dict[str, str | int] = {"url": self.registry_url, "timeout": REGISTRY_TIMEOUT_S}
        if self.ssl_ca_location and self.registry_url.startswith("https:"):
            # One private CA signs the brokers' and the registry's certificates (`kdp stack up --secure`).
            config["ssl.ca.location"] = self.ssl_ca_location
        if self.registry_user:
            config["basic.auth.user.info"] = f"{self.registry_user}:{self.registry_password or ''}"
        return config


#: Environment variable -> Settings attribute: every setting is read from `KDP_<ITS NAME IN CAPITALS>`, and
#: these are the only names the code reads.
ENV_NAMES: dict[str, str] = {f"KDP_{setting.name.upper()}": setting.name for setting in fields(Settings)}
