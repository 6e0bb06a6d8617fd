"""Unit tests of tokens, passwords, identity encryption, masking and content hashes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from dispatcher.security import (
    IdentityBox,
    content_hash,
    hash_password,
    hash_token,
    mask_name,
    mask_phone,
    new_password,
    new_token,
    verify_password,
)

SECRET = "test-secret-key-that-is-long-enough-0123456789"
OTHER_SECRET = "another-secret-key-that-is-long-enough-9876543210"


# -- tokens -------------------------------------------------------------------------------------


def test_a_new_token_carries_its_prefix_and_is_unique() -> None:
    tokens = {new_token("zd") for _ in range(50)}

    assert len(tokens) == 50
    assert all(t.startswith("zd_") and len(t) > 40 for t in tokens)


def test_a_token_is_stored_as_its_sha256_hex_digest() -> None:
    token = "zd_abc"

    assert hash_token(token) == hashlib.sha256(b"zd_abc").hexdigest()
    assert hash_token(token) == hash_token(token)
    assert hash_token(token) != hash_token("zd_abd")
    assert token not in hash_token(token)


# -- passwords ----------------------------------------------------------------------------------


def test_a_password_hash_is_argon2id_and_verifies_only_the_same_password() -> None:
    hashed = hash_password("correct horse 电池")

    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse 电池")
    assert not verify_password(hashed, "correct horse 电")
    assert not verify_password(hashed, "")


def test_hashing_the_same_password_twice_gives_different_salted_hashes() -> None:
    assert hash_password("secret") != hash_password("secret")


@pytest.mark.parametrize(
    "stored", ["", "not-a-hash", "$argon2id$v=19$m=1$garbage", hashlib.sha256(b"x").hexdigest()]
)
def test_verifying_against_a_malformed_hash_is_false_not_an_error(stored: str) -> None:
    assert verify_password(stored, "x") is False


def test_a_generated_password_is_random_and_verifies() -> None:
    password = new_password()

    assert len(password) >= 12
    assert password != new_password()
    assert verify_password(hash_password(password), password)


# -- identity encryption ------------------------------------------------------------------------

IDENTITY = {"name": "李秀英", "phone": "13812345678", "anonymous": False}


def test_identity_roundtrips_through_seal_and_open() -> None:
    box = IdentityBox(SECRET)

    sealed = box.seal(IDENTITY)

    assert sealed is not None
    assert box.open(sealed) == IDENTITY
    assert IdentityBox(SECRET).open(sealed) == IDENTITY  # the key is derived, not random


def test_sealed_identity_contains_no_plaintext() -> None:
    sealed = IdentityBox(SECRET).seal(IDENTITY)

    assert sealed is not None
    raw = base64.urlsafe_b64decode(sealed)
    for value in ("李秀英", "13812345678", "12345678", "phone", "name"):
        assert value not in sealed
        assert value.encode() not in raw


def test_sealing_the_same_identity_twice_gives_different_ciphertexts() -> None:
    box = IdentityBox(SECRET)

    assert box.seal(IDENTITY) != box.seal(IDENTITY)


def test_opening_with_another_secret_key_raises_value_error() -> None:
    sealed = IdentityBox(SECRET).seal(IDENTITY)

    with pytest.raises(ValueError, match="cannot be decrypted"):
        IdentityBox(OTHER_SECRET).open(sealed)


@pytest.mark.parametrize("token", ["not-a-fernet-token", "gAAAAABtampered"])
def test_opening_garbage_raises_value_error(token: str) -> None:
    with pytest.raises(ValueError, match="cannot be decrypted"):
        IdentityBox(SECRET).open(token)


def test_an_empty_identity_seals_to_none_and_none_opens_to_empty() -> None:
    box = IdentityBox(SECRET)

    assert box.seal({}) is None
    assert box.open(None) == {}
    assert box.open("") == {}


# -- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张**"),
        ("李四", "李*"),
        ("欧阳娜娜", "欧***"),
        ("张", "张*"),  # never shows a one-character name in full
        ("Alice", "A****"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_name_keeps_only_the_first_character(name: str | None, masked: str | None) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86*******5678"),
        ("05718888666", "057****8666"),
        ("12345678", "123*5678"),
        ("1234567", "*******"),  # too short to show both ends
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone_keeps_the_first_three_and_last_four_digits(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


# -- content hashes -----------------------------------------------------------------------------


def test_content_hash_is_stable_under_dict_key_order() -> None:
    a = {"township": "大兴镇", "subject": {"name": "赵德明", "rank": "village"}, "n": [1, 2]}
    b = {"n": [1, 2], "subject": {"rank": "village", "name": "赵德明"}, "township": "大兴镇"}

    assert content_hash(SECRET, a) == content_hash(SECRET, b)
    assert len(content_hash(SECRET, a)) == 64


@pytest.mark.parametrize(
    "other",
    [
        {"township": "大兴镇", "phone": "13812345679"},
        {"township": "丰登乡", "phone": "13812345678"},
        {"township": "大兴镇"},
        {"township": "大兴镇", "phone": "13812345678", "extra": None},
        {"township": "大兴镇", "phone": 13812345678},
    ],
)
def test_content_hash_differs_for_different_content(other: dict[str, object]) -> None:
    assert content_hash(SECRET, {"township": "大兴镇", "phone": "13812345678"}) != content_hash(SECRET, other)


def test_content_hash_depends_on_the_secret_key() -> None:
    body = {"phone": "13812345678"}

    assert content_hash(SECRET, body) != content_hash(OTHER_SECRET, body)
    # a keyed hash: not the plain digest anyone could recompute from a guessed phone number
    assert content_hash(SECRET, body) != hashlib.sha256(b'{"phone":"13812345678"}').hexdigest()


def test_content_hash_accepts_values_json_cannot_encode_natively() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

    assert content_hash(SECRET, {"at": at}) == content_hash(SECRET, {"at": str(at)})
