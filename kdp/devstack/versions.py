"""What the local stack runs: the one place that names the Kafka and registry versions.

Everything else (the Maven pom via `-Dkafka.version`, cache folder names, `kdp stack status`) reads these
constants, so moving to another version is a one-line change here.
"""

KAFKA_VERSION = "4.3.1"
"""Apache Kafka, run in KRaft mode from the jars of `org.apache.kafka:kafka_2.13` on Maven Central."""

REGISTRY_VERSION = "3.3.3"
"""Apicurio Registry, whose Confluent-compatible API (`/apis/ccompat/v7`) the pipeline's clients talk to."""

REGISTRY_ARTIFACT = f"io.apicurio:apicurio-registry-app:{REGISTRY_VERSION}:tar.gz:all"
"""Maven coordinates of the registry's runnable archive (`quarkus-run.jar` beside `lib/` and `app/`)."""

OIDC_VERSION = "26.5.6"
"""Keycloak, the secure stack's OpenID Connect server (`kdp.devstack.oidc`)."""

OIDC_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{OIDC_VERSION}:tar.gz"
"""Maven coordinates of Keycloak's distribution (`bin/`, `lib/quarkus-run.jar`, `themes/`, ...)."""

MINIMUM_JAVA = 21
"""Apicurio 3.3 is compiled for Java 21 (class file 65); Kafka 4.3 is content with 17, so 21 serves both."""
