"""`kdp stack up --secure` against real clients: who gets in, and what each principal may do.

One secure stack (its own home and ports, with the registry, which must reach Kafka through SASL too) serves the
session (`secure_stack` in tests/conftest.py); the provisioning job created its pipeline topics as `provisioning`.
Tests do not depend on each other's order: the end-to-end test accounts for every message of `user-login`, whoever
wrote it, and the converter's own probes write only inside aborted transactions, which read_committed readers never
see.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import AlterConfigOp, ConfigResourceType, KafkaAdminClient
from kafka.admin import ConfigResource as KafkaConfigResource
from kafka_io import read_all
from secure_stack import QUIET, settings_of

from kdp.devstack import certificates, cli, security
from kdp.devstack.config import StackConfig
from kdp.devstack.stack import LocalStack, StackInfo
from orchestration.conversion.offsets import active_members, read_offsets
from orchestration.definitions import defs
from orchestration.defs.conversion.jobs import run_config_for
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from orchestration.reassignment.executor import (
    BROKER_RATE_KEYS,
    Throttles,
    current_throttles,
    kafka_python_admin,
    remove_throttles,
)
from streaming import topics
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.kafka_clients import make_consumer
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.loop.pipeline import open_converter
from streaming.offset_ranges import OffsetRange
from streaming.records import DLQ_REPLAY_COUNT
from streaming.settings import Settings

pytestmark = pytest.mark.integration

PIPELINE_TOPICS = (topics.SOURCE_TOPIC, topics.OUTPUT_TOPIC, topics.DEAD_LETTER_TOPIC)
CALL_TIMEOUT = 30


def _settings(info: StackInfo, principal: str, **overrides: object) -> Settings:
    return settings_of(info, principal, **overrides)


def _client(info: StackInfo, principal: str, **extra: Any) -> dict[str, Any]:
    return {**_settings(info, principal).kafka_config(), **QUIET, **extra}


def _error_code(error: BaseException) -> int:
    assert isinstance(error, KafkaException), error
    code: int = error.args[0].code()
    return code


def _produce(config: dict[str, Any], topic: str, value: bytes) -> KafkaError | None:
    """Produce one message and wait for its delivery report: None when the broker took it, else its error."""
    reports: list[KafkaError | None] = []
    producer = Producer(config)
    producer.produce(topic, value, on_delivery=lambda error, _message: reports.append(error))
    assert producer.flush(CALL_TIMEOUT) == 0
    return reports[0]


# ----------------------------------------------------------------------------------------- authentication


def test_a_client_without_credentials_gets_no_metadata(secure_stack: StackInfo) -> None:
    admin = AdminClient({"bootstrap.servers": secure_stack.bootstrap, **QUIET})

    with pytest.raises(KafkaException) as refused:
        admin.list_topics(timeout=5)

    assert _error_code(refused.value) == KafkaError._TRANSPORT


def test_a_wrong_password_is_refused_with_an_authentication_error(secure_stack: StackInfo) -> None:
    errors: list[KafkaError] = []
    settings = _settings(secure_stack, "admin", sasl_password="not-the-password")
    producer = Producer({**settings.kafka_config(), "log_level": 0, "error_cb": errors.append})

    for _ in range(100):
        producer.poll(0.1)
        if any(error.code() == KafkaError._AUTHENTICATION for error in errors):
            break

    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=2)


# ----------------------------------------------------------------------------------------------- TLS


def test_a_client_that_does_not_trust_the_stack_ca_is_refused_before_logging_in(secure_stack: StackInfo) -> None:
    """Right credentials, but the system's CAs instead of the stack's: the TLS handshake fails, so the
    password never leaves the client."""
    config = {key: value for key, value in _client(secure_stack, "admin").items() if key != "ssl.ca.location"}
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "error_cb": errors.append})

    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    for _ in range(100):  # the error callback is served by poll()
        admin.poll(0.1)
        if errors:
            break

    assert any(error.code() == KafkaError._SSL for error in errors), errors


def test_a_client_that_does_not_speak_tls_is_refused(secure_stack: StackInfo) -> None:
    settings = _settings(secure_stack, "admin", security_protocol="SASL_PLAINTEXT")
    admin = AdminClient({**settings.kafka_config(), **QUIET})

    with pytest.raises(KafkaException) as refused:
        admin.list_topics(timeout=5)

    assert _error_code(refused.value) == KafkaError._TRANSPORT


def test_the_registry_answers_only_over_https_to_clients_that_trust_the_stack_ca(secure_stack: StackInfo) -> None:
    url = secure_stack.registry_url
    assert url is not None and url.startswith("https://")
    ca = _settings(secure_stack, "admin").ssl_ca_location
    assert ca is not None

    trusting = ssl.create_default_context(cafile=ca)
    admin = _settings(secure_stack, "admin")
    login = base64.b64encode(f"{admin.registry_user}:{admin.registry_password}".encode()).decode()
    request = urllib.request.Request(f"{url}/subjects", headers={"Authorization": f"Basic {login}"})
    with urllib.request.urlopen(request, timeout=10, context=trusting) as ok:
        assert ok.status == 200
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{url}/subjects", timeout=10, context=trusting)
    assert anonymous.value.code == 401
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(f"{url}/subjects", timeout=10)
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url.replace("https://", "http://") + "/subjects", timeout=10)


def test_the_stack_ca_key_is_never_stored_and_its_files_are_private(secure_stack: StackInfo) -> None:
    assert secure_stack.home is not None
    tls = certificates.tls_files(secure_stack.home)

    assert tls.folder.stat().st_mode & 0o777 == 0o700
    assert sorted(path.name for path in tls.folder.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]
    assert {path.stat().st_mode & 0o777 for path in tls.folder.iterdir()} == {0o600}
    server_key = tls.key.read_text().strip()
    holding_a_key = [path for path in secure_stack.home.rglob("*") if path.is_file() and _holds_private_key(path)]
    assert tls.key in holding_a_key
    for path in holding_a_key:  # the server key (in its file and the nodes' 0600 configuration), nothing else
        text = path.read_text()
        assert text.count("PRIVATE KEY-----") == 2, path  # one BEGIN, one END: a single key
        assert server_key in text or server_key.replace("\n", "\\n") in text, path
        assert path.stat().st_mode & 0o777 == 0o600, path


def _holds_private_key(path: Path) -> bool:
    try:
        return b"PRIVATE KEY" in path.read_bytes()
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ authorization


def test_the_generator_writes_login_events_but_nothing_else(secure_stack: StackInfo) -> None:
    generator = _client(secure_stack, "generator", **{"enable.idempotence": True, "acks": "all"})

    assert _produce(generator, topics.SOURCE_TOPIC, b'{"user_id": "probe"}') is None
    refused = _produce(generator, topics.OUTPUT_TOPIC, b"not mine to write")

    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_converter_reads_in_its_group_and_writes_its_outputs_in_transactions(secure_stack: StackInfo) -> None:
    assert _produce(_client(secure_stack, "generator"), topics.SOURCE_TOPIC, b"for the converter") is None
    consumer = make_consumer(_settings(secure_stack, "converter"), QUIET)  # the converter's own consumer
    consumer.subscribe([topics.SOURCE_TOPIC])
    try:
        message = None
        for _ in range(60):
            message = consumer.poll(1)
            if message is not None:
                break
        assert message is not None and message.error() is None, message and message.error()
    finally:
        consumer.close()

    producer = Producer(_client(secure_stack, "converter", **{"transactional.id": "kdp-converter-x"}))
    producer.init_transactions(CALL_TIMEOUT)
    producer.begin_transaction()
    reports: list[KafkaError | None] = []
    for topic in (topics.OUTPUT_TOPIC, topics.DEAD_LETTER_TOPIC):
        producer.produce(topic, b"probe", on_delivery=lambda error, _message: reports.append(error))
    assert producer.flush(CALL_TIMEOUT) == 0
    producer.abort_transaction(CALL_TIMEOUT)  # written and acknowledged, never visible to read_committed readers

    assert reports == [None, None]


def test_the_converter_may_not_use_another_transactional_id(secure_stack: StackInfo) -> None:
    producer = Producer(_client(secure_stack, "converter", **{"transactional.id": "someone-else"}))

    with pytest.raises(KafkaException) as refused:
        producer.init_transactions(CALL_TIMEOUT)

    assert _error_code(refused.value) == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_the_converter_cannot_create_topics(secure_stack: StackInfo) -> None:
    admin = AdminClient(_client(secure_stack, "converter"))
    name = f"converter-made-{uuid.uuid4().hex[:8]}"

    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=CALL_TIMEOUT)

    assert _error_code(refused.value) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_provisioning_administers_the_pipeline_topics_and_no_others(secure_stack: StackInfo) -> None:
    admin = AdminClient(_client(secure_stack, "provisioning"))

    assert set(PIPELINE_TOPICS) <= set(admin.list_topics(timeout=CALL_TIMEOUT).topics)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.SOURCE_TOPIC)
    configs = admin.describe_configs([resource])[resource].result(timeout=CALL_TIMEOUT)
    assert "retention.ms" in configs
    cluster = admin.describe_cluster(request_timeout=CALL_TIMEOUT).result(timeout=CALL_TIMEOUT)
    assert len(cluster.nodes) == secure_stack.brokers

    name = f"provisioning-made-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=CALL_TIMEOUT)
    assert _error_code(refused.value) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_dagster_reads_the_converter_groups_offsets_and_members(secure_stack: StackInfo) -> None:
    """The sensor's offset reads (confluent-kafka), configured from the `KDP_*` settings of `dagster`."""
    settings = _settings(secure_stack, "dagster")
    admin = AdminClient(_client(secure_stack, "admin"))
    metadata = admin.list_topics(topics.SOURCE_TOPIC, timeout=CALL_TIMEOUT)
    partitions = len(metadata.topics[topics.SOURCE_TOPIC].partitions)

    offsets = read_offsets(settings, topics.SOURCE_TOPIC)
    assert set(offsets.high) == set(range(partitions))
    assert active_members(settings) >= 0


def test_reassignment_may_throttle_and_reassign_through_kafka_python(secure_stack: StackInfo) -> None:
    """The reassignment executor's admin (kafka-python), configured from the `KDP_*` settings of `reassignment`."""
    admin = kafka_python_admin(_settings(secure_stack, "reassignment"))
    try:
        assert not admin.list_partition_reassignments()
        throttle = Throttles(brokers={1: {BROKER_RATE_KEYS[0]: "1048576"}})
        _set_throttles(admin, throttle)
        assert _throttles_once_settled(admin, throttle) == throttle
        remove_throttles(admin, throttle)
        assert _throttles_once_settled(admin, Throttles()) == Throttles()
        # Reassigning a partition to the replicas it has is accepted and changes nothing: ALTER on the cluster.
        replicas = [1] if secure_stack.brokers == 1 else [1, 2, 3]
        refused = admin.alter_partition_reassignments({KafkaTopicPartition(topics.SOURCE_TOPIC, 0): replicas})
        assert all(error is None for error in refused.values()), refused
    finally:
        admin.close()


def _throttles_once_settled(admin: KafkaAdminClient, expected: Throttles) -> Throttles:
    """Broker 1's throttles once they equal `expected`, or as they are after a while (a dynamic broker config
    reaches the broker through the metadata log, a moment after the controller accepted it)."""
    for _ in range(50):
        current = current_throttles(admin, [1], [])
        if current == expected:
            break
        time.sleep(0.1)
    return current


def _set_throttles(admin: KafkaAdminClient, throttles: Throttles) -> None:
    resources = [
        KafkaConfigResource(ConfigResourceType.BROKER, str(broker), {k: (AlterConfigOp.SET, v) for k, v in c.items()})
        for broker, c in throttles.brokers.items()
    ]
    results = admin.alter_configs(resources, raise_on_unknown=False, incremental=True)
    assert all(outcome == "OK" for outcomes in results.values() for outcome in outcomes.values()), results


def test_admin_creates_any_topic(secure_stack: StackInfo) -> None:
    admin = AdminClient(_client(secure_stack, "admin"))
    name = f"admin-made-{uuid.uuid4().hex[:8]}"

    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=CALL_TIMEOUT)

    assert name in admin.list_topics(timeout=CALL_TIMEOUT).topics


# ------------------------------------------------------------------------------------------------ secrets


def test_no_password_shows_in_output_logs_command_lines_or_settings(
    secure_stack: StackInfo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = secure_stack.home
    assert home is not None
    passwords = {
        name: security.principal_environment(home, name)["KDP_SASL_PASSWORD"] for name in security.CLIENT_NAMES
    }
    node_secret = security.read_credential(home, security.NODE)
    assert node_secret is not None
    hidden = {*passwords.values(), node_secret.password}
    for variable, value in _ports_of(secure_stack).items():
        monkeypatch.setenv(variable, value)

    assert cli.main(["up", "--secure"]) == 0  # already running: prints how to reach it
    assert cli.main(["status"]) == 0
    assert cli.main(["logs", "-n", "1000"]) == 0
    printed = capsys.readouterr()
    shown = printed.out + printed.err + caplog.text
    assert str(security.credentials_file(home, "converter")) in shown  # paths are shown, contents never
    logs = [path.read_text(errors="replace") for path in home.rglob("*.log")]
    settings_reprs = [repr(_settings(secure_stack, name)) for name in security.CLIENT_NAMES]
    command_lines = _command_lines()

    for secret in hidden:
        assert secret not in shown
        assert not any(secret in text for text in logs)
        assert not any(secret in text for text in settings_reprs)
        assert not any(secret in line for line in command_lines)
    for path in [security.credentials_file(home), *(security.credentials_file(home, n) for n in passwords)]:
        assert path.stat().st_mode & 0o777 == 0o600


def _ports_of(info: StackInfo) -> dict[str, str]:
    """The environment under which `kdp stack` finds this test's stack."""
    assert info.home is not None
    record = LocalStack(StackConfig.from_env(home=info.home)).read_run()
    assert record is not None
    return {
        "KDP_HOME": str(info.home),
        "KDP_KAFKA_PORT": str(record.kafka_port),
        "KDP_CONTROLLER_PORT": str(record.controller_port),
        "KDP_REGISTRY_PORT": str(record.registry_port),
        "KDP_REGISTRY_MGMT_PORT": str(record.registry_management_port),
        "KDP_OIDC_PORT": str(record.oidc_port),
    }


def _command_lines() -> list[str]:
    """Every readable process command line on this machine (Linux's /proc), the stack's JVMs included."""
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


# ---------------------------------------------------------------------------------------- registry roles


@pytest.mark.parametrize("control_plane_principal", ["provisioning", "schema"])
def test_the_registry_lets_the_control_plane_change_the_contract_and_converters_only_read_it(
    secure_stack: StackInfo, control_plane_principal: str
) -> None:
    """Roles from the OIDC server: `converter` (sr-readonly) is refused registering a schema and changing a
    subject's compatibility (HTTP 403) and may read; the provisioning job's and the schema workflow's principals
    (sr-developer) may do both; a wrong password is not logged in (HTTP 401)."""
    subject = f"roles-{uuid.uuid4().hex[:8]}-value"
    fields = [{"name": "user_id", "type": "string"}]
    schema = Schema(json.dumps({"type": "record", "name": "Probe", "fields": fields}), "AVRO")
    converter = SchemaRegistryClient(_settings(secure_stack, "converter").registry_config())
    control_plane = SchemaRegistryClient(_settings(secure_stack, control_plane_principal).registry_config())

    with pytest.raises(SchemaRegistryError) as not_registered:
        converter.register_schema(subject, schema)
    with pytest.raises(SchemaRegistryError) as not_changed:
        converter.set_compatibility(subject_name=subject, level="FULL")
    schema_id = control_plane.register_schema(subject, schema)
    control_plane.set_compatibility(subject_name=subject, level="FULL")
    found = converter.lookup_schema(subject, schema)
    impostor = _settings(secure_stack, "converter", registry_password="not-the-password")
    with pytest.raises(SchemaRegistryError) as not_logged_in:
        SchemaRegistryClient(impostor.registry_config()).get_subjects()

    assert (not_registered.value.http_status_code, not_changed.value.http_status_code) == (403, 403)
    assert schema_id > 0 and converter.get_compatibility(subject) == "FULL"
    assert found.schema_id == schema_id
    assert not_logged_in.value.http_status_code == 401


# ------------------------------------------------------------------------------------------- end to end


def test_the_pipeline_runs_end_to_end_under_its_own_principals(secure_stack: StackInfo) -> None:
    """The generator writes as `generator`, the real converter runs exactly-once as `converter`: every message
    of `user-login` becomes exactly one record or one dead letter."""
    factory = EventFactory(11, IrregularityRates.with_malformed(0.05))
    generated = generate(_settings(secure_stack, "generator").kafka_config(), topics.SOURCE_TOPIC, factory, count=300)
    assert generated.ok and generated.delivered == 300

    settings = _settings(secure_stack, "converter", delivery="exactly-once")
    converter = open_converter(settings, instance="e2e", poll_timeout=0.5)
    converter.subscribe()
    give_up = threading.Timer(300, (stop := threading.Event()).set)  # a failure to report, not a hang
    give_up.start()
    try:
        summary = converter.run(stop, until_caught_up=True)
    finally:
        give_up.cancel()
        converter.close()
    assert not stop.is_set(), f"the converter never caught up: {summary}"

    reader = _settings(secure_stack, "admin")
    source = {(m.partition(), m.offset()) for m in read_all(reader, topics.SOURCE_TOPIC)}
    deserialize = AvroDeserializer(SchemaRegistryClient(reader.registry_config()))
    context = SerializationContext(topics.OUTPUT_TOPIC, MessageField.VALUE)
    records = [deserialize(m.value(), context) for m in read_all(reader, topics.OUTPUT_TOPIC)]
    positions = Counter((record["source_partition"], record["source_offset"]) for record in records)
    for letter in read_all(reader, topics.DEAD_LETTER_TOPIC):
        headers = read_dead_letter_headers(letter.headers())
        if DLQ_REPLAY_COUNT in headers:
            continue  # a replay's (tests/integration/test_principals.py): a dead letter again, not a new output
        positions[int(headers["kdp.dlq.source.partition"]), int(headers["kdp.dlq.source.offset"])] += 1

    assert len(source) >= 300
    assert set(positions) == source
    assert set(positions.values()) == {1}


def test_a_dagster_conversion_run_converts_its_ranges_over_tls(
    secure_stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control plane end to end: the sensor's offset read, then a `convert_ranges` run, as `dagster`, with
    the registry over HTTPS; every message up to the ranges' ends has exactly one output afterwards."""
    factory = EventFactory(12, IrregularityRates.with_malformed(0.05))
    generated = generate(_settings(secure_stack, "generator").kafka_config(), topics.SOURCE_TOPIC, factory, count=200)
    assert generated.ok and generated.delivered == 200
    assert secure_stack.home is not None
    for name, value in {
        **secure_stack.environment(),
        **security.principal_environment(secure_stack.home, "dagster"),
    }.items():
        monkeypatch.setenv(name, value)  # as in a Dagster deployment: the KDP_* variables the resources bind
    settings = Settings.from_env()
    offsets = read_offsets(settings, topics.SOURCE_TOPIC)
    ranges = [
        OffsetRange(topics.SOURCE_TOPIC, p, offsets.committed[p] or offsets.low[p], offsets.high[p])
        for p in sorted(offsets.high)
        if (offsets.committed[p] or offsets.low[p]) < offsets.high[p]
    ]
    assert ranges

    result = defs.resolve_job_def("convert_ranges").execute_in_process(
        run_config=run_config_for(ranges),
        resources={"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)},
        instance=dg.DagsterInstance.ephemeral(),
    )

    assert result.success
    after = read_offsets(settings, topics.SOURCE_TOPIC)
    assert all(after.committed[r.partition] == r.end for r in ranges)
    reader = _settings(secure_stack, "admin")
    ends = {r.partition: r.end for r in ranges}
    source = {
        (m.partition(), m.offset())
        for m in read_all(reader, topics.SOURCE_TOPIC)
        if m.offset() < ends.get(m.partition(), 0)
    }
    deserialize = AvroDeserializer(SchemaRegistryClient(reader.registry_config()))
    context = SerializationContext(topics.OUTPUT_TOPIC, MessageField.VALUE)
    positions = Counter(
        (record["source_partition"], record["source_offset"])
        for record in (deserialize(m.value(), context) for m in read_all(reader, topics.OUTPUT_TOPIC))
    )
    for letter in read_all(reader, topics.DEAD_LETTER_TOPIC):
        headers = read_dead_letter_headers(letter.headers())
        if DLQ_REPLAY_COUNT in headers:
            continue  # a replay's (tests/integration/test_principals.py): a dead letter again, not a new output
        positions[int(headers["kdp.dlq.source.partition"]), int(headers["kdp.dlq.source.offset"])] += 1
    converted = {where: count for where, count in positions.items() if where in source}
    assert set(converted) == source
    assert set(converted.values()) == {1}
