"""Tokens, passwords, content hashes and encryption of personal data.

- API tokens are 32 random bytes; only their SHA-256 is stored (they are high-entropy, so a
  fast hash is enough and lets us look them up by hash).
- Web passwords are human-chosen: argon2id (argon2-cffi), slow on purpose.
- Personal identity (reporter, complainant, contact) is encrypted with Fernet
  (``cryptography``: AES-128-CBC + HMAC-SHA256) under a key derived from the secret key with
  HKDF, so rotating the secret key is the only key management needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_hasher = PasswordHasher()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def content_hash(secret_key: str, value: Any) -> str:
    """Keyed hash of a body: compares retries without storing a guessable digest of phone numbers."""
    return hmac.new(_derive(secret_key, b"content-hash"), canonical_json(value), hashlib.sha256).hexdigest()


def person_key(secret_key: str, name: str) -> str:
    """A keyed hash of a person's name (spaces and case folded): matches names without storing them.

    Used for recusals that name a reporter and for the subject history (廉政档案); an attacker
    with the database but not the secret key cannot test guesses against it.
    """
    folded = "".join(name.split()).casefold()
    return hmac.new(_derive(secret_key, b"person-key"), folded.encode(), hashlib.sha256).hexdigest()


class IdentityBox:
    """Encrypts and decrypts the identity part of a payload."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"identity-encryption")))

    def seal(self, identity: dict[str, Any]) -> str | None:
        if not identity:
            return None
        return self._fernet.encrypt(canonical_json(identity)).decode()

    def open(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken:
            raise ValueError("identity cannot be decrypted with this secret key") from None


def mask_name(name: str | None) -> str | None:
    """张三丰 → 张**; keeps the family name only."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


#: Masks by the kind of field (the key, folded): a name keeps its family name, a phone its first
#: three and last four digits, an ID number its first four and last two, an e-mail its first
#: letter and domain; every other value keeps at most its first character.
_NAMES = frozenset({"name", "姓名", "realname", "real_name", "full_name"})
_PHONES = frozenset({"phone", "mobile", "tel", "telephone", "phone_number", "手机", "电话"})
_ID_NUMBERS = frozenset({"id_card", "idcard", "id_number", "id_no", "identity_card", "身份证", "身份证号"})
_EMAILS = frozenset({"email", "e_mail", "mail", "邮箱"})
#: Values that say nothing about who a person is (``anonymous: true``) stay as they are.
_PLAIN = (bool,)


def _mask_text(key: str, text: str) -> str:
    folded = key.strip().lower().replace("-", "_")
    if folded in _NAMES:
        return mask_name(text) or ""
    if folded in _PHONES:
        return mask_phone(text) or ""
    if folded in _ID_NUMBERS:
        return text[:4] + "*" * max(0, len(text) - 6) + text[-2:] if len(text) > 6 else "*" * len(text)
    if folded in _EMAILS and "@" in text:
        local, _, domain = text.partition("@")
        return (local[:1] + "***@" + domain) if local else "***@" + domain
    return text[:1] + "*" * min(max(len(text) - 1, 2), 8)


def mask_fields(value: Any, key: str = "") -> Any:
    """Personal data masked field by field, whatever its fields: strings by the kind their key
    names, numbers wholly, nested objects and lists field by field; booleans stay."""
    if isinstance(value, dict):
        return {k: mask_fields(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_fields(v, key) for v in value]
    if value is None or isinstance(value, _PLAIN):
        return value
    if isinstance(value, str):
        return _mask_text(key, value) if value else value
    return "***"  # a number or anything else that could identify someone
