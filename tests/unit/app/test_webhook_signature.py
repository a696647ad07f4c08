"""`X-Hub-Signature-256` against GitHub's own documented example (secret, body, signature)."""

from __future__ import annotations

import pytest

from app.github.signature import sign, signature_valid

# from GitHub's "Validating webhook deliveries" page
SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_sign_matches_githubs_example() -> None:
    assert sign(SECRET, BODY) == SIGNATURE


@pytest.mark.parametrize(
    ("secret", "body", "header", "valid"),
    [
        (SECRET, BODY, SIGNATURE, True),
        (SECRET, BODY, f"{SIGNATURE}\n", True),
        (SECRET, BODY, f" {SIGNATURE}", False),
        (SECRET, BODY, SIGNATURE.upper(), False),
        (SECRET, BODY, SIGNATURE[:-1] + "f", False),
        (SECRET, BODY, SIGNATURE[:-1], False),
        (SECRET, BODY, SIGNATURE + "7", False),
        (SECRET, BODY + b" ", SIGNATURE, False),
        (SECRET + "!", BODY, SIGNATURE, False),
        (SECRET, BODY, SIGNATURE.removeprefix("sha256="), False),
        (SECRET, BODY, "sha1=" + SIGNATURE.removeprefix("sha256="), False),
        (SECRET, BODY, "sha256=", False),
        (SECRET, BODY, "", False),
        (SECRET, BODY, None, False),
        ("", BODY, sign("", BODY), True),
    ],
)
def test_signature_valid(secret: str, body: bytes, header: str | None, valid: bool) -> None:
    assert signature_valid(secret, body, header) is valid
