"""The shapes of requests and answers, for the OpenAPI document at ``/openapi.json`` (and ``/docs``).

The endpoints read bodies with orjson and answer with orjson-encoded bytes; these models describe those
bodies, they are not on the request path. The input record's schema is built from the served model's
Schema, so the docs list the model's own columns with their types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .protocols import MLFLOW_KEYS, OIP_DATATYPES
from .runtime import ServedModel, example_record
from .validation import schema_column

__all__ = ["ERROR_RESPONSES", "record_schema", "request_bodies"]


class ErrorBody(BaseModel):
    error: str = Field(description="What was wrong, naming the field, and what to send instead.")


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class Status(BaseModel):
    status: str


class RegistryHealth(BaseModel):
    reachable: bool = Field(description="false: the registry could not be reached; true: it answered, but names no "
                                        "version for the alias (it was deleted).")
    since: datetime = Field(description="When the look-ups began to fail (the first failure of this run of them).")
    error: str | None = Field(None, description="Why the last look-up failed, in one line (with an API key, to "
                                                "callers that send it; the server's log has it in full).")
    retry: datetime = Field(description="When the server looks up the alias again.")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="'degraded': the server refused the version its alias names, or cannot look the alias up "
                    "(see 'registry'), and still serves the version it has (it answers well).")
    model: str
    version: str = Field(description="The version served.")
    alias: str | None = Field(None, description="The registry alias the server follows.")
    alias_version: str | None = Field(None, description="Degraded: the version the alias names, refused.")
    refused: str | None = Field(None, description="Degraded: why, in one line (with an API key, to callers that "
                                                  "send it; the server's log has it in full).")
    retry: str | None = Field(None, description="Degraded: when the server tries that version again.")
    registry: RegistryHealth | None = Field(None, description="While look-ups of the alias fail (absent while they "
                                                              "work): the registry's state, since when, why and when "
                                                              "the server looks again.")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] | None = None


class ModelReady(BaseModel):
    name: str
    ready: bool


class OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[OutputTensor]


class InputTensor(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(description="The column's name.")
    shape: list[int] = Field(description="[n] or [n, 1] for n rows.")
    datatype: str = Field(json_schema_extra={"enum": list(OIP_DATATYPES)})
    data: list[Any] = Field(description="The column's values, flat or one list per row; null for a missing value.")
    parameters: Any = Field(None, description="Accepted and ignored.")


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # another field is refused, naming it (protocols.OIP_FIELDS)
    id: str | None = None
    model_name: str | None = Field(None, description="Optional (KServe's client sends it); the path names the model.")
    parameters: Any = Field(None, description="Optional; 'interval' (a coverage such as 0.9) adds the outputs "
                                              "'lower' and 'upper' (regression) or 'prediction_set' (classifiers).")
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None = None


class PredictionRow(BaseModel):
    prediction: Any = Field(description="The predicted label (classification) or value (regression).")
    probabilities: dict[str, float] | None = Field(None, description="Classifiers: probability of each label.")
    lower: float | None = Field(None, description="Regression with 'interval': the range's lower end.")
    upper: float | None = Field(None, description="Regression with 'interval': the range's upper end.")
    prediction_set: list[Any] | None = Field(
        None, description="Classifiers with 'interval': the labels that together hold the truth that often.")


class PredictResponse(BaseModel):
    predictions: list[PredictionRow]
    model_version: str
    warnings: list[str] | None = None


class InvocationsResponse(BaseModel):
    predictions: list[dict[str, Any]] = Field(
        description="One object per row: 'prediction', and 'proba_<label>' for classifiers (as mlflow models serve).")
    warnings: list[str] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        400: "The body cannot be read as JSON (or CSV).",
        401: "An API key is required (X-API-Key or Authorization: Bearer).",
        404: "No such model or version here.",
        413: "The body is over the size limit, or has more rows than one request may.",
        415: "A content type the endpoint does not read.",
        422: "The rows do not fit the model: the message names the column, row and problem.",
        503: "The service cannot answer now.",
    }.items()
}

_ROLE_TYPES: dict[str, dict[str, Any]] = {
    "numeric": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "categorical": {"type": ["string", "integer", "null"]},
    "datetime": {"type": ["string", "null"]},
    "text": {"type": ["string", "number", "boolean", "null"]},  # numbers and true/false are read as their text
    "image": {"type": ["string", "null"], "contentEncoding": "base64",
              "description": "A picture (PNG, JPEG, ...) as base64 text or a data:image/...;base64, URI."},
}


_OIP_INPUT = {"numeric": "FP64", "boolean": "BOOL"}


def record_schema(served: ServedModel) -> dict[str, Any]:
    """JSON Schema of one input row of the served model."""
    v = served.validator
    example = example_record(served.model)
    props: dict[str, Any] = {}
    for name in v.features:
        role = v.roles[name]
        prop = dict(_ROLE_TYPES.get(role, {}))
        col = schema_column(served.model, name)
        if role == "categorical" and name in v.categories and len(v.categories[name]) <= 200 \
                and v.unseen_categories.value == "reject":
            prop = {"enum": [*sorted(v.categories[name]), None]}
        if role == "datetime":
            fmt = v.datetime_formats.get(name)
            prop["description"] = f"A date ({fmt})" if fmt else "A date (ISO 8601)"
            if fmt == "%Y-%m-%d":
                prop["format"] = "date"
                prop["pattern"] = r"^(1[7-9]\d\d|2[01]\d\d|22[0-5]\d)-"  # the years pandas can hold
            elif fmt in (None, "ISO8601"):
                prop["format"] = "date-time"
        elif col is not None and col.reason and role != "image":  # an image's reason names files: not here
            prop["description"] = f"{role}: {col.reason}"
        if example.get(name) is not None:
            prop["examples"] = [example[name]]
        props[name] = prop
    return {"type": "object", "title": "Record", "properties": props, "required": list(v.features),
            "additionalProperties": v.extra_columns.value == "ignore",
            "description": "One input row: a value (or null) for each of the model's columns."}


def request_bodies(served: ServedModel) -> dict[str, dict[str, Any]]:
    """The request bodies of /predict and /invocations for the served model (OIP's is fixed)."""
    v = served.validator
    record = {"$ref": "#/components/schemas/Record"}
    records = {"type": "array", "items": record, "minItems": 1}
    example = example_record(served.model)
    columnar = {"type": "object", "additionalProperties": {"type": "array"},
                "description": "Columns: {column: [values]}."}
    split = {"type": "object", "required": ["columns", "data"], "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array"}},
        "index": {"type": "array"}}}
    invocations = {
        "type": "object",
        "description": "Exactly one of " + ", ".join(MLFLOW_KEYS) + " (MLflow's scoring protocol).",
        "properties": {"dataframe_split": split, "dataframe_records": records,
                       "instances": {"anyOf": [records, columnar]}, "inputs": {"anyOf": [records, columnar]},
                       "params": {"description": "Optional; 'interval' (a coverage such as 0.9) adds 'lower' and "
                                                 "'upper' (regression) or 'prediction_set' (classifiers) to each row; "
                                                 "an object whose other keys are refused (422)."}},
        "oneOf": [{"required": [k]} for k in MLFLOW_KEYS],
        "additionalProperties": False,
    }
    infer_example = {"id": "1", "inputs": [
        {"name": c, "shape": [1], "datatype": _OIP_INPUT.get(v.roles[c], "BYTES"), "data": [example[c]]}
        for c in v.features]}
    return {
        "/infer": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/InferRequest"}, "example": infer_example}}},
        "/predict": {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [{"type": "object", "required": ["records"], "additionalProperties": False, "properties": {
                "records": records,
                "interval": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                             "description": "Optional coverage, such as 0.9: adds a conformal range (regression) "
                                            "or label set (classifiers) to each prediction."}}},
                {**records, "description": "A bare list of records, as other servers take them."},
                {**record, "type": "object", "description": "One row alone, {column: value}; answered as a list of "
                                                             "one."}]},
            "example": {"records": [example]}}}},
        "/invocations": {"required": True, "content": {
            "application/json": {"schema": invocations,
                                 "example": {"dataframe_split": {"columns": list(example),
                                                                 "data": [list(example.values())]}}},
            "text/csv": {"schema": {"type": "string"},
                         "example": ",".join(example) + "\n" + ",".join("" if x is None else str(x)
                                                                      for x in example.values())}}},
    }
