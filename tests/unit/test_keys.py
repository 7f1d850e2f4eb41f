import pytest

from pulseline.keys import ApiKey, Scope, StaticKeyRing, display_prefix, new_key, well_formed


@pytest.mark.parametrize("scope", list(Scope))
def test_new_keys_are_well_formed_and_name_their_scope(scope: Scope) -> None:
    raw = new_key(scope)
    assert raw.startswith(f"pl_{scope.value}_") and well_formed(raw)


def test_a_mistyped_key_fails_its_checksum() -> None:
    raw = new_key(Scope.INGEST)
    i = len("pl_ingest_") + 5
    typo = raw[:i] + ("a" if raw[i] != "a" else "b") + raw[i + 1 :]
    assert not well_formed(typo)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "pl_ingest_",
        "sk_live_abc",
        "pl_root_" + "a" * 38,
        "pl_ingest_" + "a" * 37,
        "pl_ingest_" + "-" * 38,
    ],
)
def test_malformed_keys_are_refused(raw: str) -> None:
    assert not well_formed(raw)


def test_the_display_prefix_reveals_scope_and_four_characters() -> None:
    raw = new_key(Scope.READ)
    assert display_prefix(raw) == raw[: len("pl_read_") + 4]


def test_the_static_ring_never_resolves_a_malformed_key() -> None:
    ring = StaticKeyRing()
    ring.add("pl_ingest_short", ApiKey(1, Scope.INGEST))
    assert ring.lookup("pl_ingest_short") is None
