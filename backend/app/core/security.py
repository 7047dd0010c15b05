"""Password hashing (in a worker thread, behind a small limiter) and JWT access tokens."""

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio
import jwt
from passlib.context import CryptContext

from app.core.config import settings
from app.models import utc_now

pwd_context = CryptContext(
    schemes=["argon2", "bcrypt"],
    deprecated="auto",
    argon2__type="ID",
    argon2__time_cost=settings.ARGON2_TIME_COST,
    argon2__memory_cost=settings.ARGON2_MEMORY_COST,
    argon2__parallelism=settings.ARGON2_PARALLELISM,
)

# Hashing is CPU-bound and holds the GIL in bursts: a dedicated, small limiter keeps the
# event loop responsive while logins queue for it.
_hashing_limiter = anyio.CapacityLimiter(settings.HASHING_CONCURRENCY)
BCRYPT_MAX_BYTES = 72
_dummy_hash: str | None = None


def _verify_and_update(password: str, hashed: str) -> tuple[bool, str | None]:
    try:
        if pwd_context.identify(hashed) == "bcrypt":
            # Legacy bcrypt only ever saw the first 72 bytes; bcrypt 5 raises past them.
            valid = pwd_context.verify(password.encode()[:BCRYPT_MAX_BYTES], hashed)
            return valid, pwd_context.hash(password) if valid else None
        valid, new_hash = pwd_context.verify_and_update(password, hashed)
        return bool(valid), new_hash
    except ValueError:  # an unrecognised or malformed stored hash never matches
        return False, None


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(pwd_context.hash, password, limiter=_hashing_limiter)


async def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """Check a password; on success also return a new hash when the stored one is outdated."""
    return await anyio.to_thread.run_sync(
        partial(_verify_and_update, password, hashed), limiter=_hashing_limiter
    )


async def verify_dummy_password(password: str) -> None:
    """Spend the time of a real check, so an unknown email answers like a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password(secrets.token_urlsafe(16))
    await verify_password(password, _dummy_hash)


def new_opaque_token() -> tuple[str, str]:
    """A random token for the client and the SHA-256 hex digest we store instead."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    login_id: uuid.UUID


def create_access_token(
    *, user_id: uuid.UUID, tenant_id: uuid.UUID, login_id: uuid.UUID, now: datetime | None = None
) -> str:
    issued = now or utc_now()
    payload = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "sid": str(login_id),
        "iat": issued,
        "exp": issued + timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES),
        "jti": secrets.token_urlsafe(12),
        "type": "access",
    }
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=settings.JWT_ALGORITHM)


_REQUIRED_CLAIMS = ["exp", "iat", "sub", "tid", "sid", "type"]


def _verify(token: str) -> tuple[AccessClaims, float] | None:
    """PyJWT's verdict on a token (signature, algorithm, `exp`, `iat`, `nbf`, required
    claims): its claims and expiry when it is a valid access token, else None."""
    try:
        payload = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
        )
        if payload["type"] != "access":
            return None
        claims = AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            tenant_id=uuid.UUID(payload["tid"]),
            login_id=uuid.UUID(payload["sid"]),
        )
        return claims, float(payload["exp"])
    except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError, OverflowError):
        return None


# A client sends the same access token with every request until it expires, and
# `jwt.decode` costs about 38 us a call here (7 % of a GET by id): the tokens PyJWT accepted
# are kept (the most recent _VERIFIED_MAX) until their `exp`. Once accepted, only `exp` can
# turn a token invalid (`iat` and `nbf` only fall further into the past). Revocation is
# unaffected: the caller's login is read from the database on every request.
_VERIFIED_MAX = 4096
_verified: dict[str, tuple[AccessClaims, float]] = {}


def decode_access_token(token: str) -> AccessClaims | None:
    """The claims of a valid access token, or None for anything else."""
    verified = _verified.get(token)
    if verified is None:
        verified = _verify(token)
        if verified is None:
            return None
        if len(_verified) >= _VERIFIED_MAX:
            del _verified[next(iter(_verified))]  # the oldest entry
        _verified[token] = verified
    claims, expires = verified
    return claims if time.time() < expires else None
