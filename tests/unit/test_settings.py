import pytest

from streaming.settings import ENV_NAMES, Settings, SettingsError


def test_defaults_point_at_the_local_stack():
    settings = Settings.from_env({})
    assert settings.bootstrap == "localhost:9092"
    assert settings.registry_url.endswith("/apis/ccompat/v7")
    assert (settings.source_topic, settings.output_topic, settings.dlq_topic) == (
        "user-login",
        "processed-data",
        "user-login.dlq",
    )


def test_environment_then_overrides():
    settings = Settings.from_env({"KDP_BATCH_SIZE": "10", "KDP_DELIVERY": "exactly-once"}, batch_size=20)
    assert settings.batch_size == 20
    assert settings.delivery == "exactly-once"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KDP_BATCH_SIZE": "many"}, "KDP_BATCH_SIZE"),
        ({"KDP_BATCH_SIZE": "0"}, "KDP_BATCH_SIZE"),
        ({"KDP_DELIVERY": "at-most-once"}, "KDP_DELIVERY"),
        ({"KDP_REGISTRY_URL": "localhost:8081"}, "KDP_REGISTRY_URL"),
        ({"KDP_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KDP_SASL_MECHANISM"),
        ({"KDP_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KDP_SASL_MECHANISM": "SCRAM-SHA-512"}, "KDP_SASL_USERNAME"),
        ({"KDP_OUTPUT_TOPIC": "user-login"}, "KDP_OUTPUT_TOPIC"),
        ({"KDP_SECURITY_PROTOCOL": "TLS"}, "KDP_SECURITY_PROTOCOL"),
        ({"KDP_MAX_EVENT_AGE": "30"}, "KDP_MAX_EVENT_AGE"),
        ({"KDP_MAX_EVENT_AGE": "0d"}, "KDP_MAX_EVENT_AGE"),
        ({"KDP_MAX_EVENT_AGE": "-1d"}, "KDP_MAX_EVENT_AGE"),
        ({"KDP_MAX_EVENT_AGE": "a week"}, "KDP_MAX_EVENT_AGE"),
    ],
)
def test_bad_settings_fail_naming_the_variable(environ, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(environ)


def test_secrets_stay_out_of_repr_and_errors():
    settings = Settings.from_env(
        {
            "KDP_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KDP_SASL_MECHANISM": "SCRAM-SHA-512",
            "KDP_SASL_USERNAME": "converter",
            "KDP_SASL_PASSWORD": "s3cret-value",
            "KDP_REGISTRY_PASSWORD": "other-s3cret",
        }
    )
    assert "s3cret" not in repr(settings)
    assert settings.kafka_config()["sasl.password"] == "s3cret-value"
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"KDP_SASL_PASSWORD": "s3cret-value", "KDP_BATCH_SIZE": "x"})
    assert "s3cret" not in str(error.value)


def test_every_env_name_maps_to_a_setting():
    attributes = set(Settings.__dataclass_fields__)
    assert set(ENV_NAMES.values()) <= attributes
    assert all(name.startswith("KDP_") for name in ENV_NAMES)


@pytest.mark.parametrize(
    ("raw", "age_ms"),
    [
        ("unlimited", None),
        ("UNLIMITED", None),
        ("90s", 90_000),
        ("15m", 900_000),
        ("12h", 43_200_000),
        ("30d", 2_592_000_000),
    ],
)
def test_the_event_age_window_is_a_duration_or_unlimited(raw, age_ms):
    settings = Settings.from_env({"KDP_MAX_EVENT_AGE": raw})
    assert settings.max_event_age_ms == age_ms
    now_ms = 1_800_000_000_000
    assert settings.oldest_event_ms(now_ms) == (0 if age_ms is None else now_ms - age_ms)


def test_by_default_every_event_age_is_accepted():
    assert Settings.from_env({}).max_event_age_ms is None


def test_a_registry_that_never_answers_fails_the_request_instead_of_hanging(monkeypatch):
    """A server that accepts the connection and stays silent (what CI once met): the client gives up and raises."""
    import socket

    import httpx2
    from confluent_kafka.schema_registry import SchemaRegistryClient

    import streaming.settings

    monkeypatch.setattr(streaming.settings, "REGISTRY_TIMEOUT_S", 0.2)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        config = Settings.from_env({"KDP_REGISTRY_URL": f"http://127.0.0.1:{port}"}).registry_config()
        client = SchemaRegistryClient({**config, "max.retries": 1, "retries.wait.ms": 10})
        with pytest.raises(httpx2.TimeoutException):
            client.get_subjects()


def test_each_client_library_gets_the_same_cluster_and_security():
    settings = Settings.from_env(
        {
            "KDP_BOOTSTRAP": "a:9093,b:9093",
            "KDP_SECURITY_PROTOCOL": "SASL_SSL",
            "KDP_SASL_MECHANISM": "SCRAM-SHA-512",
            "KDP_SASL_USERNAME": "reassigner",
            "KDP_SASL_PASSWORD": "pw",
            "KDP_SSL_CA_LOCATION": "/ca.pem",
        }
    )
    librdkafka, kafka_python = settings.kafka_config(), settings.kafka_python_config()
    assert kafka_python == {
        "bootstrap_servers": librdkafka["bootstrap.servers"].split(","),  # type: ignore[union-attr]
        "security_protocol": librdkafka["security.protocol"],
        "sasl_mechanism": librdkafka["sasl.mechanism"],
        "sasl_plain_username": librdkafka["sasl.username"],
        "sasl_plain_password": librdkafka["sasl.password"],
        "ssl_cafile": librdkafka["ssl.ca.location"],
    }
    plain = Settings.from_env({"KDP_BOOTSTRAP": "a:9092"}).kafka_python_config()
    assert plain == {"bootstrap_servers": ["a:9092"], "security_protocol": "PLAINTEXT"}
