from pydantic import BaseModel

from pulseline.schemas import EventKind
from pulseline.topics import REGISTRY, Role, by_name, ingest_topic


def test_every_topic_has_a_schema_and_a_partition_key() -> None:
    for spec in REGISTRY:
        assert issubclass(spec.schema, BaseModel), spec.name
        assert spec.key.strip(), spec.name


def test_topic_names_are_unique() -> None:
    names = [s.name for s in REGISTRY]
    assert len(names) == len(set(names))


def test_every_event_family_has_an_ingest_topic() -> None:
    for kind in EventKind:
        spec = ingest_topic(kind)
        assert spec.role is Role.INGEST and spec.name == f"ingest.{kind.value}"


def test_the_prefix_namespaces_physical_names() -> None:
    assert ingest_topic(EventKind.ERROR).physical("t1.") == "t1.ingest.error"


def test_compacted_topics_say_so_in_their_config() -> None:
    changelog = by_name("pulseline-processors-project_counts-changelog")
    assert changelog.config() == {"cleanup.policy": "compact"}
    assert by_name("dlq.events").config()["cleanup.policy"] == "delete"


def test_an_undeclared_topic_is_refused() -> None:
    try:
        by_name("ingest.surprise")
    except KeyError as exc:
        assert "declared" in str(exc)
    else:
        raise AssertionError("an undeclared topic was accepted")
