from pathlib import Path

import pytest

from pulseline.settings import ConfigError, GatewaySettings, StorageSettings


def test_it_reads_prefixed_variables_from_the_given_mapping() -> None:
    s = GatewaySettings.from_env({"PULSELINE_GATEWAY_PORT": "9100", "GATEWAY_PORT": "1"})
    assert s.gateway_port == 9100


def test_it_names_the_variable_when_a_value_is_bad() -> None:
    with pytest.raises(ConfigError, match="PULSELINE_GATEWAY_PORT") as info:
        GatewaySettings.from_env({"PULSELINE_GATEWAY_PORT": "eighty"})
    assert "eighty" in str(info.value)


def test_it_refuses_out_of_range_values() -> None:
    with pytest.raises(ConfigError, match="PULSELINE_PRODUCE_TIMEOUT_S"):
        GatewaySettings.from_env({"PULSELINE_PRODUCE_TIMEOUT_S": "0"})


def test_it_defaults_to_the_local_broker_and_embedded_clickhouse() -> None:
    s = StorageSettings.from_env({"PULSELINE_DATA_DIR": "/srv/pl", "PULSELINE_KAFKA_PORT": "9999"})
    assert s.bootstrap == "127.0.0.1:9999" and s.uses_local_kafka
    assert s.clickhouse_dsn == "chdb:///srv/pl/clickhouse" and s.embedded


def test_an_external_broker_and_server_replace_the_defaults() -> None:
    s = StorageSettings.from_env(
        {
            "PULSELINE_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "PULSELINE_CLICKHOUSE_URL": "http://ch:8123",
        }
    )
    assert s.bootstrap == "k1:9092,k2:9092" and not s.uses_local_kafka
    assert not s.embedded


def test_redacted_masks_secrets_and_keys_by_variable() -> None:
    shown = StorageSettings.from_env({"PULSELINE_DATA_DIR": "x"}).redacted()
    assert shown["PULSELINE_DATA_DIR"] == str(Path("x"))
    assert "PULSELINE_SINK_BATCH_ROWS" in shown
