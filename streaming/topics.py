"""The names every part of the pipeline agrees on: topics, schema subjects, the converter's group.

One source for each name. Compose files, Dagster resources, the CLI and the tests import these
defaults; deployments override them through `streaming.settings` (environment variables), never
by editing copies of the strings elsewhere.
"""

SOURCE_TOPIC = "user-login"
OUTPUT_TOPIC = "processed-data"
DEAD_LETTER_TOPIC = "user-login.dlq"
CONVERTER_GROUP = "kdp-converter"


def value_subject(topic: str) -> str:
    """The schema subject of a topic's values under Confluent's TopicNameStrategy."""
    return f"{topic}-value"
