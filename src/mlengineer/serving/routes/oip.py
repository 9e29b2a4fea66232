"""Open Inference Protocol v2: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``,
``GET /v2/models/{name}[/versions/{version}]``, ``GET .../ready`` and ``POST .../infer``.

Readiness stays true while the server refuses the version its registry alias names and serves the one
before; the model's metadata says so in its ``parameters`` (``alias``, ``alias_version``, ``refused``,
``retry``), which the protocol leaves free, as ``/health`` does (``routes/mlflow.py``).

A request's ``id`` is its id where no ``X-Request-ID`` header gives one: the prediction log keys its rows by
it (outcomes join on it) and the answer's ``x-request-id`` header carries it, as the body's ``id`` does.

Each input tensor is one column (``protocols.columns_from_oip``), in JSON or as binary tensor data (the
extension tritonclient uses by default, answered in kind when asked); the answer has ``prediction`` (and
``probabilities`` for classifiers), plus ``lower``/``upper`` or ``prediction_set`` when the request's
``parameters.interval`` asks for a coverage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import SchemaError
from .. import schemas as S
from ..errors import BadRequest, NotFound
from ..jsonbody import RepeatedKey
from ..middleware import adopt_request_id
from ..protocols import (
    BINARY_HEADER,
    OIP_PARAMS,
    binary_answer,
    binary_outputs,
    check_json_type,
    columns_from_oip,
    inference_params,
    oip_datatype,
    parse_json,
    plain,
    shown,
    split_binary,
)
from ..runtime import Prediction, ServedModel
from .common import json_response, package_version, public_source, requested_coverage, uncertainty
from .mlflow import health_answer

if TYPE_CHECKING:
    from ..service import Service

__all__ = ["alias_parameters", "model_metadata", "read_infer", "router"]


def router(service: Service) -> APIRouter:
    """The Open Inference Protocol's routes over ``service``."""
    r = APIRouter()
    errors = S.ERROR_RESPONSES

    def check(model_name: str, version: str | None = None) -> ServedModel:
        served = service.served
        if model_name != served.name:
            raise NotFound(f"No model named {shown(model_name)} here; this server serves {served.name!r}.")
        if version is not None and version != served.version:
            raise NotFound(f"Model {served.name!r} has no version {shown(version)} here; this server serves "
                           f"version {served.version}.")
        return served

    @r.get("/v2/health/live", response_model=S.Live, tags=["health"])
    async def live() -> Response:
        return json_response({"live": True})

    @r.get("/v2/health/ready", response_model=S.Ready, tags=["health"])
    async def ready() -> Response:
        return json_response({"ready": True})

    @r.get("/v2", response_model=S.ServerMetadata, responses=errors, tags=["open inference protocol"])
    async def server_metadata() -> Response:
        return json_response({"name": "mlengineer", "version": package_version(),
                              "extensions": ["binary_tensor_data"]})

    @r.get("/v2/models/{model_name}", response_model=S.ModelMetadata, responses=errors,
           tags=["open inference protocol"])
    async def get_model(model_name: str) -> Response:
        return json_response(model_metadata(check(model_name), alias_parameters(service)))

    @r.get("/v2/models/{model_name}/versions/{model_version}", response_model=S.ModelMetadata,
           responses=errors, tags=["open inference protocol"])
    async def get_model_version(model_name: str, model_version: str) -> Response:
        return json_response(model_metadata(check(model_name, model_version), alias_parameters(service)))

    @r.get("/v2/models/{model_name}/ready", response_model=S.ModelReady, responses=errors,
           tags=["open inference protocol"])
    async def model_ready(model_name: str) -> Response:
        return json_response({"name": check(model_name).name, "ready": True})

    @r.get("/v2/models/{model_name}/versions/{model_version}/ready", response_model=S.ModelReady,
           responses=errors, tags=["open inference protocol"])
    async def model_version_ready(model_name: str, model_version: str) -> Response:
        return json_response({"name": check(model_name, model_version).name, "ready": True})

    async def infer(request: Request, model_name: str, version: str | None) -> Response:
        check(model_name, version)
        body, tensors = await read_infer(request)
        columns, n_rows, wanted = columns_from_oip(body, tensors)
        params = inference_params(body, "parameters", OIP_PARAMS, "/v2/models/.../infer")
        coverage = requested_coverage(params.get("interval"), "parameters.interval")
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="infer")
        answer: dict[str, Any] = {"model_name": served.name, "model_version": served.version,
                                  "id": body.get("id") if isinstance(body.get("id"), str) else None,
                                  "outputs": infer_outputs(served, pred, coverage, wanted)}
        if item.warnings:
            answer["parameters"] = {"warnings": item.warnings}
        binary = binary_outputs(body, [o["name"] for o in answer["outputs"]])
        if binary:  # the binary tensor data extension: JSON first, then each binary output's bytes
            content, length = binary_answer(answer, binary)
            return Response(content, media_type="application/octet-stream", headers={BINARY_HEADER: str(length)})
        return json_response(answer)

    infer_doc: dict[str, Any] = {"requestBody": {"$ref": "#/components/requestBodies/Infer"}}

    @r.post("/v2/models/{model_name}/infer", response_model=S.InferResponse, responses=errors,
            openapi_extra=infer_doc, tags=["open inference protocol"])
    async def infer_latest(request: Request, model_name: str) -> Response:
        return await infer(request, model_name, None)

    @r.post("/v2/models/{model_name}/versions/{model_version}/infer", response_model=S.InferResponse,
            responses=errors, openapi_extra=infer_doc, tags=["open inference protocol"])
    async def infer_version(request: Request, model_name: str, model_version: str) -> Response:
        return await infer(request, model_name, model_version)

    return r


async def read_infer(request: Request) -> tuple[Any, Any]:
    """An infer request's JSON body and binary tensors; its ``id`` becomes the request's id where no
    ``X-Request-ID`` header gave one, so the prediction log is keyed by it (``adopt_request_id``)."""
    content_type = request.headers.get("content-type")
    check_json_type(content_type, "/v2/models/.../infer", binary=True)
    given = request.headers.get(BINARY_HEADER)
    head, tensors = split_binary(await request.body(), given)
    try:
        body = parse_json(head)
    except RepeatedKey:  # JSON all the same: said as it is
        raise
    except BadRequest:
        if given is None and (content_type or "").split(";")[0].strip().lower() == "application/octet-stream":
            raise BadRequest(f"The body is binary tensor data (application/octet-stream) but the request has no "
                             f"{BINARY_HEADER} header: send it with the length in bytes of the JSON part that "
                             "starts the body.") from None
        raise
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        adopt_request_id(request.scope, body["id"])
    return body, tensors


def alias_parameters(service: Service) -> dict[str, str | bool]:
    """What the model's metadata says of the registry alias the server follows: its name, and while the server
    refuses the version it names, that version (``alias_version``), why (``refused``) and when it tries again
    (``retry``); while its look-ups of the alias fail, ``/health``'s ``registry`` fields as ``registry_reachable``,
    ``registry_since``, ``registry_error`` and ``registry_retry`` (the protocol's parameters hold plain values,
    not objects); all as ``/health`` says them; nothing for a bundle folder."""
    said = health_answer(service)
    params: dict[str, str | bool] = {k: said[k] for k in ("alias", "alias_version", "refused", "retry") if k in said}
    params.update({f"registry_{k}": v for k, v in said.get("registry", {}).items()})
    return params


def model_metadata(served: ServedModel, alias: dict[str, str | bool] | None = None) -> dict[str, Any]:
    """The model's metadata: one input per feature column, the outputs it gives; ``alias`` joins its
    parameters (``alias_parameters``), which the protocol leaves free."""
    m, v = served.model, served.validator
    inputs = [{"name": c, "datatype": _oip_input_type(v.roles[c]), "shape": [-1],
               "parameters": {"role": v.roles[c]}} for c in v.features]
    outputs: list[dict[str, Any]] = []
    if served.classification:
        outputs.append({"name": "prediction", "datatype": oip_datatype(m.classes), "shape": [-1]})
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(m.classes)],
                        "parameters": {"classes": [str(c) for c in m.classes]}})
    else:
        outputs.append({"name": "prediction", "datatype": "FP64", "shape": [-1]})
    return {"name": served.name, "versions": [served.version], "platform": "mlengineer", "inputs": inputs,
            "outputs": outputs, "parameters": {"task": m.task.kind, "target": m.target,
                                               "source": public_source(served.source), **(alias or {})}}


def infer_outputs(served: ServedModel, pred: Prediction, coverage: float | None,
                  wanted: list[str] | None) -> list[dict[str, Any]]:
    """The output tensors of one infer answer, only those ``wanted`` when the request names some."""
    n = len(pred.labels)
    outputs: list[dict[str, Any]] = []
    if served.classification:
        outputs.append({"name": "prediction", "datatype": oip_datatype(served.model.classes), "shape": [n],
                        "data": plain(pred.labels)})
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [n, pred.raw.shape[1]],
                        "data": pred.raw.ravel(), "parameters": {
                            "classes": [str(c) for c in served.model.classes]}})
    else:
        outputs.append({"name": "prediction", "datatype": "FP64", "shape": [n], "data": plain(pred.labels)})
    if coverage is not None:
        for key, values in uncertainty(served, pred.raw, coverage, "parameters.interval").items():
            if key == "prediction_set":  # a variable-length list per row: one JSON text each, as BYTES
                outputs.append({"name": key, "datatype": "BYTES", "shape": [n],
                                "data": [orjson.dumps(v).decode() for v in values]})
            else:
                outputs.append({"name": key, "datatype": "FP64", "shape": [n], "data": values})
    if wanted is not None:
        names = [o["name"] for o in outputs]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise SchemaError(f"Output {shown(unknown[0])} is not one this model gives; it gives {', '.join(names)}.")
        outputs = [o for o in outputs if o["name"] in wanted]
    return outputs


def _oip_input_type(role: str) -> str:
    return {"numeric": "FP64", "boolean": "BOOL"}.get(role, "BYTES")
