"""The errors a user of mlengineer sees.

Every error message names the file, column, field or parameter at fault and says what to do. The CLI prints
the message on one line and exits with status 2; the server answers with a 4xx JSON body holding it.

    MLEngineerError                      base of all of them; catch this to catch any of ours
     ├── ConfigError(ValueError)         a parameter or option out of range ("time_budget must be ...")
     ├── DataError(ValueError)           a file, source, table or column that cannot be used
     │    └── SchemaError                rows that do not match the model's schema (missing column, type)
     ├── ModelError(ValueError)          a path that is not a model bundle, or a bundle that cannot be used
     └── ServingError(RuntimeError)      the service cannot start or answer (port taken, registry down)

Each inherits the builtin that users already catch, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "MLEngineerError", "ModelError", "SchemaError", "ServingError"]


class MLEngineerError(Exception):
    """Base class of every error mlengineer raises on purpose."""

    #: HTTP status the server answers with when this error escapes a request.
    http_status: int = 400

    def __init__(self, message: str) -> None:
        # One line: the CLI prints it as is and the server puts it in JSON.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(MLEngineerError, ValueError):
    """A parameter or option has a value mlengineer cannot use."""


class DataError(MLEngineerError, ValueError):
    """A data file, source, table or column cannot be used as given."""


class SchemaError(DataError):
    """Rows do not match the schema the model was trained on."""

    http_status = 422


class ModelError(MLEngineerError, ValueError):
    """A path is not a model bundle, or the bundle cannot be used."""

    http_status = 404


class ServingError(MLEngineerError, RuntimeError):
    """The prediction service cannot start or cannot answer."""

    http_status = 503
