"""The errors a user of mlengineer sees.

Every error message names the file, column, field or parameter at fault and says what to do. The CLI prints
the message on one line and exits with status 2; the server answers with a 4xx JSON body holding it.

    MLEngineerError                      base of all of them; catch this to catch any of ours
     ├── ConfigError(ValueError)         a parameter or option out of range ("time_budget must be ...")
     ├── DataError(ValueError)           a file, source, table or column that cannot be used
     │    └── SchemaError                rows that do not match the model's schema (missing column, type)
     ├── ModelError(ValueError)          a path that is not a model bundle, or a bundle that cannot be used
     └── ServingError(RuntimeError)      the service cannot start or answer (port taken, registry down)

Each inherits the builtin that users already catch, so ``except ValueError`` keeps working. Beside them,
``InputWarning(UserWarning)``: rows a model answered that it may answer badly (``Model.predict`` from Python).
A message the Python face shares with the CLI names the Python argument where the CLI's names its flag
(``said_in_python``, ``python_words``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Argument", "ConfigError", "DataError", "InputWarning", "MLEngineerError", "ModelError", "SchemaError",
           "ServingError", "python_words", "said_in_python"]


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


class InputWarning(UserWarning):
    """Rows a model answered but may answer badly: a category it never saw, a number far outside its training
    range, a column it does not know (left out). Python's face of what ``mlengineer predict`` prints and the
    server returns in ``warnings``; ``warnings.simplefilter("ignore", InputWarning)`` silences it."""


# -- the Python face's words: a message shared with the CLI names the Python argument, not the flag ---------------

@dataclass(frozen=True)
class Argument:
    """What a CLI flag is in Python: the argument's ``name`` (or, for a switch such as --no-weights, the whole
    call ``weights=False``) and the ``kind`` of value it takes, which says how a value after the flag is written:
    text, list, mapping, number, choice (one of ``choices``) or switch."""

    name: str
    kind: str = "text"
    choices: tuple[str, ...] = ()

    def said(self, value: str | None) -> str:
        """``name=value`` as Python writes it (``drop=['age']``, ``task='multiclass'``); ``name=`` alone."""
        if self.kind == "switch" or value is None:
            return self.name if self.kind == "switch" else f"{self.name}="
        literal = value if value[:1] in "'\"" or _PLACEHOLDER.fullmatch(value) else repr(value)
        if self.kind == "number":
            literal = value
        elif self.kind == "list":
            literal = f"[{literal}]"
        elif self.kind == "mapping":
            key, _, val = value.partition("=")
            literal = "{" + ": ".join(v if _PLACEHOLDER.fullmatch(v) else repr(v) for v in (key, val)) + "}"
        return f"{self.name}={literal}"

    def takes(self, token: str) -> bool:
        """Whether ``token``, the word after the flag, is the flag's value rather than the sentence going on."""
        if self.kind == "switch" or token.lower() in _PROSE:
            return False
        if self.kind == "number":
            return _NUMBER.fullmatch(token) is not None
        if self.kind == "choice":
            return token.strip("'\"") in self.choices
        if self.kind == "mapping":
            return "=" in token.strip("=")
        return True


_FLAG = re.compile(r"--([a-z][a-z0-9-]*)(?: ('[^']*'|\"[^\"]*\"|[\w:/@.+=-]*[\w/]))?")
_COMMAND = re.compile(r"'mlengineer [^']*'")  # a command the message quotes is said as the CLI takes it
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?")
_PLACEHOLDER = re.compile(r"[A-Z][A-Z_]+")  # COL, ROLE, PATH: written as they are
#: the words that go on a sentence after a flag: never a flag's value
_PROSE = frozenset({"a", "an", "and", "are", "as", "at", "be", "both", "by", "cannot", "file", "first", "for",
                    "from", "gives", "has", "have", "holds", "if", "in", "is", "it", "its", "leave", "name",
                    "names", "naming", "needs", "not", "of", "on", "only", "or", "out", "takes", "that", "the",
                    "them", "this", "to", "too", "was", "which", "with"})


def python_words(message: str, arguments: Mapping[str, Argument], phrases: Mapping[str, str] | None = None) -> str:
    """``message`` as a Python caller reads it: each ``phrases`` key replaced by its value (a command the
    message suggests, said as the call that does it), then each ``--flag`` of ``arguments`` (with the value
    after it, where it has one) written as the argument; a command the message still quotes keeps its flags."""
    for old, new in (phrases or {}).items():
        message = message.replace(old, new)

    def argument(match: re.Match[str]) -> str:
        arg = arguments.get(f"--{match[1]}")
        if arg is None:
            return match[0]
        value = match[2]
        if value is not None and arg.takes(value):
            return arg.said(value)
        return arg.said(None) + match[0][len(match[1]) + 2:]

    kept = _COMMAND.findall(message)
    parts = _COMMAND.split(message)
    said = [_FLAG.sub(argument, p) for p in parts]
    return "".join(s + (kept[i] if i < len(kept) else "") for i, s in enumerate(said))


@contextmanager
def said_in_python(arguments: Mapping[str, Argument], phrases: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run the block; an MLEngineerError escaping it says its flags as ``arguments`` (see ``python_words``),
    the same error otherwise (its type, attributes and traceback)."""
    try:
        yield
    except MLEngineerError as e:
        e.args = (python_words(str(e), arguments, phrases),)
        raise
