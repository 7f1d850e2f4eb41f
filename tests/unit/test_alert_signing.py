from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerting.signing import headers, key_of, secrets_of, signature

NEW = "whsec_" + base64.b64encode(b"new-key-0123456789abcdef").decode()
OLD = "whsec_" + base64.b64encode(b"old-key-0123456789abcdef").decode()
BODY = b'{"type":"incident.opened"}'


def test_the_official_library_verifies_our_signature() -> None:
    sent = headers([NEW], "msg_1", int(time.time()), BODY)
    Webhook(NEW).verify(BODY, sent)


@pytest.mark.parametrize("receiver_secret", [NEW, OLD], ids=["new", "old"])
def test_during_rotation_a_receiver_with_either_secret_verifies(receiver_secret: str) -> None:
    sent = headers([NEW, OLD], "msg_1", int(time.time()), BODY)
    assert len(sent["webhook-signature"].split(" ")) == 2
    Webhook(receiver_secret).verify(BODY, sent)


def test_a_tampered_body_fails_verification() -> None:
    sent = headers([NEW], "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(BODY + b" ", sent)


def test_a_known_vector_matches() -> None:
    # The example from the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_an_unsigned_message_still_gets_id_and_timestamp() -> None:
    assert headers([], "msg_1", 5, BODY) == {"webhook-id": "msg_1", "webhook-timestamp": "5"}


@pytest.mark.parametrize("bad", ["abc", "whsec_not*base64"])
def test_a_malformed_secret_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        key_of(bad)


def test_a_channel_secret_holds_space_separated_rotation_secrets() -> None:
    assert secrets_of(f"{NEW} {OLD}") == [NEW, OLD]
    assert secrets_of(None) == []
