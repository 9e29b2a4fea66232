"""What a running service is told: which model, where to listen, its limits and policies.

One pydantic model, built by ``mlengineer serve`` from its options and handed to every worker process.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

__all__ = ["API_KEY_ENV", "ExtraColumns", "ServeSettings", "UnseenCategories", "api_key_problem"]

#: environment variable holding the API key when ``--api-key`` is not given
API_KEY_ENV = "MLENGINEER_API_KEY"


def api_key_problem(key: str | None, *, variable: bool = False) -> str | None:
    """Why ``key`` cannot guard a server (None: it can, or there is no key). An empty key would leave the server
    open (``--api-key "$KEY"`` with KEY unset, or ``MLENGINEER_API_KEY=$KEY`` likewise); HTTP drops the spaces
    around a header's value, so a key made of spaces, or starting or ending with one, is one no client could
    send. ``variable``: the key comes from the environment variable (the advice says so)."""
    if key is None:
        return None
    if not key.strip():
        if variable:
            return ("is set but empty: give it the key clients will send (is the variable it comes from set?), "
                    f"or unset it (unset {API_KEY_ENV}) to serve without a key")
        return ("is empty: give the key clients will send (is the variable it comes from set?), or leave the "
                "option out to serve without a key")
    if key != key.strip():
        return "starts or ends with a space, which HTTP drops from a header's value: give the key without it"
    return None


class UnseenCategories(StrEnum):
    """What to do with a category the model never saw in training."""

    accept = "accept"  # predict quietly; the encoder treats it as a rare category
    warn = "warn"  # predict, and say so in the answer's "warnings"
    reject = "reject"  # answer 422 naming the column and the value


class ExtraColumns(StrEnum):
    """What to do with a column the model has never heard of (columns it knows but does not use, such as an
    identifier or the target, are always ignored)."""

    ignore = "ignore"
    reject = "reject"


class ServeSettings(BaseModel):
    """Settings of one prediction service. ``model`` is a bundle folder or ``models:/NAME@ALIAS``."""

    model: str
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    api_key: str | None = None
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_batch_rows: int = Field(default=10_000, ge=1)
    unseen_categories: UnseenCategories = UnseenCategories.warn
    extra_columns: ExtraColumns = ExtraColumns.reject
    prediction_log: Path | None = Path("predictions")
    access_log: bool = True
    poll_interval: float = Field(default=10.0, gt=0, description="Seconds between looks at a registry alias.")
    tracking_uri: str | None = None
    graceful_timeout: float = Field(default=30.0, ge=0, description="Seconds to finish requests in flight on shutdown.")
    keep_alive: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0, description="Seconds a request's headers may take to arrive, "
                                "and its body may pause (408 after); at shutdown a body pausing 2 s is dropped (503).")
    threads: int | None = Field(default=None, ge=1, description="Threads one prediction may use (default: cores / workers).")
    #: set by the supervisor of several workers (``supervisor.py``), not by users: what a worker loads at start
    #: (``models:/NAME/VERSION``, or a private snapshot of the bundle folder), the digest it must have, and the
    #: supervisor's folder, where a worker says it is ready and which version it swapped in
    pinned: str | None = None
    pinned_digest: str | None = None
    supervisor_dir: Path | None = None

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, key: str | None) -> str | None:
        problem = api_key_problem(key)
        if problem is not None:
            raise ValueError(f"the API key {problem}")
        return key

    def resolved_api_key(self) -> str | None:
        """The key (the setting's, else the environment variable's); a variable set but empty is refused as an
        empty setting is, never taken for no key."""
        if self.api_key is not None:
            return self.api_key
        key = os.environ.get(API_KEY_ENV)
        problem = api_key_problem(key, variable=True)
        if problem is not None:
            from ..errors import ConfigError

            raise ConfigError(f"{API_KEY_ENV} {problem}.")
        return key
