"""The alert runner's settings: read from PULSELINE_ALERTING_*, bad values named at boot."""

from __future__ import annotations

import pytest

from alerting.runner import smtp_of
from pulseline.settings import AlertingSettings, ConfigError


def test_private_networks_are_refused_unless_allowed() -> None:
    assert AlertingSettings.from_env({}).alerting_allow_private_networks is False
    allowed = AlertingSettings.from_env({"PULSELINE_ALERTING_ALLOW_PRIVATE_NETWORKS": "1"})
    assert allowed.alerting_allow_private_networks is True


def test_the_consumer_group_is_namespaced_by_the_topic_prefix() -> None:
    settings = AlertingSettings.from_env({"PULSELINE_TOPIC_PREFIX": "t1."})
    assert settings.group_id == "t1.pulseline-alerting"


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="PULSELINE_ALERTING_PER_CHANNEL"):
        AlertingSettings.from_env({"PULSELINE_ALERTING_PER_CHANNEL": "0"})


def test_email_is_off_without_a_relay_and_uses_the_relay_when_set() -> None:
    assert smtp_of(AlertingSettings.from_env({})) is None
    smtp = smtp_of(
        AlertingSettings.from_env(
            {
                "PULSELINE_ALERTING_SMTP_HOST": "mail.internal",
                "PULSELINE_ALERTING_SMTP_PORT": "2525",
                "PULSELINE_ALERTING_SMTP_USER": "alerts",
                "PULSELINE_ALERTING_SMTP_PASSWORD": "hunter2",
            }
        )
    )
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.username, smtp.password) == (
        "mail.internal",
        2525,
        "alerts",
        "hunter2",
    )


def test_the_password_is_masked_in_the_effective_configuration() -> None:
    settings = AlertingSettings.from_env({"PULSELINE_ALERTING_SMTP_PASSWORD": "hunter2"})
    assert settings.redacted()["PULSELINE_ALERTING_SMTP_PASSWORD"] == "********"


def test_noise_control_defaults_alert_at_the_first_failure_and_group_short_bursts() -> None:
    settings = AlertingSettings.from_env({})
    assert settings.alerting_failure_threshold == 1
    assert settings.alerting_digest_window_s == 1.0
    assert settings.alerting_digest_min == 3
    tuned = AlertingSettings.from_env(
        {
            "PULSELINE_ALERTING_FAILURE_THRESHOLD": "3",
            "PULSELINE_ALERTING_DIGEST_WINDOW_S": "0",
            "PULSELINE_ALERTING_DIGEST_MIN": "10",
        }
    )
    assert (
        tuned.alerting_failure_threshold,
        tuned.alerting_digest_window_s,
        tuned.alerting_digest_min,
    ) == (3, 0.0, 10)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PULSELINE_ALERTING_FAILURE_THRESHOLD", "0"),
        ("PULSELINE_ALERTING_DIGEST_WINDOW_S", "-1"),
        ("PULSELINE_ALERTING_DIGEST_WINDOW_S", "61"),
        ("PULSELINE_ALERTING_DIGEST_MIN", "1"),
    ],
)
def test_a_bad_noise_control_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        AlertingSettings.from_env({variable: value})
