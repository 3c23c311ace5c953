"""Personal access tokens as HS256 JWTs, minted and verified with a fixed secret.

The secret is fixed so that a token printed by one emulator process stays valid in
another one started from the same seed; these tokens guard nothing real.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

EMULATOR_SECRET = b"opsera-emulator-signing-key-for-local-use-only"

_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """Why a presented token is refused; the message goes into the 401 body."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _sign(signing_input: bytes) -> str:
    return _b64encode(hmac.new(EMULATOR_SECRET, signing_input, hashlib.sha256).digest())


def mint(claims: dict) -> str:
    header = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_sign(signing_input)}"


def token_claims(name: str, user: dict, scopes: list[str], issued_at: float, expires_at: float) -> dict:
    return {
        "sub": user["id"],
        "email": user["email"],
        "scope": " ".join(scopes),
        "exp": int(expires_at),
        "iat": int(issued_at),
        "jti": name,
    }


# Decoded header and payload of tokens seen before, keyed by their encoded text.
# The signature is still checked on every request; only the base64 and JSON
# decoding is saved, which is most of the cost when thousands of clients poll.
_decoded: dict[str, dict] = {}
_DECODED_LIMIT = 4096


def _decode_claims(header_text: str, payload_text: str) -> dict:
    key = f"{header_text}.{payload_text}"
    claims = _decoded.get(key)
    if claims is not None:
        return claims
    try:
        header = json.loads(_b64decode(header_text))
        claims = json.loads(_b64decode(payload_text))
    except (ValueError, binascii.Error, UnicodeError):
        raise TokenError("malformed token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenError("unsupported token algorithm")
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), (int, float)):
        raise TokenError("malformed token")
    if len(_decoded) >= _DECODED_LIMIT:
        _decoded.clear()
    _decoded[key] = claims
    return claims


def verify(token: str, now: float) -> dict:
    """Return the claims of a correctly signed, unexpired token or raise TokenError."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenError("malformed token")
    header_text, payload_text, signature = parts
    claims = _decode_claims(header_text, payload_text)
    try:
        expected = _sign(f"{header_text}.{payload_text}".encode("ascii"))
    except UnicodeError:
        raise TokenError("malformed token") from None
    if not hmac.compare_digest(expected, signature.encode("ascii", "replace").decode("ascii")):
        raise TokenError("invalid token signature")
    if claims["exp"] <= now:
        raise TokenError("token expired")
    return dict(claims)


def token_id(name: str) -> str:
    """A stable 24-hex id for a named token, as the token activity log shows."""
    return hashlib.sha1(f"token:{name}".encode()).hexdigest()[:24]
