"""MLflow's scoring protocol: ``POST /invocations`` (JSON or CSV), ``GET /ping``, ``GET /health`` and
``GET /version``, answered as ``mlflow models serve`` answers them, so MLflow's clients work unchanged.

``/health`` answers 200 while the server answers, and says what it serves (``health_answer``): "degraded"
while it refuses the version its registry alias names (``watcher.Refusal``) and serves the one before, with
that version, why and when it tries again; "degraded" too while its look-ups of the alias fail
(``watcher.LookupProblem``: the registry cannot be reached, or names nothing for the alias), with a ``registry``
object saying so, since when, why and when it looks again (absent while look-ups work). Both are told when both
hold. Liveness and readiness (``/ping``, ``/v2/health/*``) stay plain: a load balancer must not pull a server
that serves a version well. The health checks are open without the API key; with one, ``/health`` says why
only to callers that send it (a reason may name classes, a registry's error its host).
"""

from __future__ import annotations

import hmac
import math
import re
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import schemas as S
from ..csvbody import charset_of
from ..errors import UnsupportedMediaType
from ..middleware import sent_key
from ..protocols import columns_from_csv, columns_from_mlflow, mlflow_params, parse_json, plain, shown
from .common import add_to_rows, json_response, package_version, requested_coverage, uncertainty

if TYPE_CHECKING:
    from ..service import Service
    from ..watcher import LookupProblem

__all__ = ["carries_key", "health_answer", "public_reason", "registry_answer", "router"]


def router(service: Service) -> APIRouter:
    """MLflow's scoring routes over ``service``."""
    r = APIRouter()

    @r.post("/invocations", response_model=S.InvocationsResponse, responses=S.ERROR_RESPONSES, tags=["mlflow"],
            openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/Invocations"}})
    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        mime = content_type.split(";")[0].strip().lower()
        coverage = None
        if mime == "text/csv":
            columns, n_rows = columns_from_csv(await request.body(), charset_of(content_type))
        elif mime == "application/json" or mime.endswith("+json"):
            parsed = parse_json(await request.body())
            columns, n_rows = columns_from_mlflow(parsed)
            coverage = requested_coverage(mlflow_params(parsed).get("interval"), "params.interval")
        else:  # none at all too, as MLflow's own server (its clients always send one)
            given = f"Content-Type {shown(content_type)} is" if mime else "A body without a Content-Type is"
            raise UnsupportedMediaType(f"{given} not read here: send application/json (dataframe_split, "
                                       "dataframe_records, instances or inputs) or text/csv.")
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="invocations",
                                                   nan_is_missing=True)
        labels = plain(pred.labels)
        if served.classification:
            names = [f"proba_{c}" for c in served.model.classes]
            probs = pred.raw.tolist()
            rows = [{"prediction": lab, **dict(zip(names, p, strict=True))}
                    for lab, p in zip(labels, probs, strict=True)]
        else:
            rows = [{"prediction": lab} for lab in labels]
        if coverage is not None:
            add_to_rows(rows, uncertainty(served, pred.raw, coverage, "params.interval"))
        answer: dict[str, Any] = {"predictions": rows}
        if item.warnings:
            answer["warnings"] = item.warnings
        return json_response(answer)

    # MLflow's server answers these with a bare newline; its clients look only at the status, so valid JSON
    # costs them nothing and keeps the answers inside the OpenAPI document
    @r.get("/ping", response_model=S.Status, tags=["health"])
    async def ping() -> Response:
        return json_response({"status": "ok"})

    key = service.settings.resolved_api_key()

    @r.get("/health", response_model=S.Health, tags=["health"])
    async def health(request: Request) -> Response:
        return json_response(health_answer(service, reason=key is None or carries_key(request, key)))

    @r.get("/version", tags=["mlflow"], responses={200: {"content": {"application/json": {"schema": {
        "type": "string"}}}, "description": "mlengineer's version."}})
    async def version() -> Response:
        return json_response(package_version())

    return r


#: an absolute path or file URI in a message (not a registry reference such as models:/name@alias)
_PATH = re.compile(r"(?<![\w:])(?:file://)?/[^\s'\",;()]+")


def public_reason(reason: str, limit: int = 300) -> str:
    """A refusal's reason as clients may see it: its first line, cut to ``limit`` characters, with each path on
    the server's disk shown by its last name only (the log has it in full)."""
    line = (reason.strip().splitlines() or [""])[0]
    line = _PATH.sub(lambda m: PurePath(m.group(0).removeprefix("file://")).name or "/", line)
    return line if len(line) <= limit else line[:limit - 3].rstrip() + "..."


def carries_key(request: Request, key: str) -> bool:
    """Whether ``request`` sends the server's API key (X-API-Key, else Authorization: Bearer)."""
    given = sent_key(dict(request.scope["headers"]))
    return bool(given) and hmac.compare_digest(given, key.encode())


def health_answer(service: Service, *, reason: bool = True) -> dict[str, Any]:
    """What ``/health`` says: the model and version served, the alias followed; while the server refuses
    the version the alias names, "degraded" with that version, why (unless ``reason`` is False) and when it
    tries again; while its look-ups of the alias fail, "degraded" with ``registry`` (``registry_answer``)."""
    served = service.served
    answer: dict[str, Any] = {"status": "ok", "model": served.name, "version": served.version}
    watcher = service.watcher
    if watcher is None:
        return answer
    from ...tracking.registry import DEFAULT_ALIAS, ModelRef

    ref = ModelRef.parse(service.settings.model)
    if ref.version is None:
        answer["alias"] = ref.alias or DEFAULT_ALIAS
    refusal = watcher.refusal
    if refusal is not None and refusal.version != served.version:
        answer.update(status="degraded", alias_version=refusal.version)
        if reason:
            answer["refused"] = public_reason(refusal.reason)
        answer["retry"] = refusal.when_again()
    problem = watcher.lookup_problem
    if problem is not None:
        answer.update(status="degraded", registry=registry_answer(problem, reason=reason))
    return answer


def registry_answer(problem: LookupProblem, *, reason: bool = True) -> dict[str, Any]:
    """``/health``'s ``registry`` while look-ups of the alias fail: whether the registry could be reached (it
    may answer that the alias names nothing), since when the look-ups fail, why (unless ``reason`` is False)
    and when the server looks again, times in ISO 8601 (UTC)."""
    from ..watcher import iso_time

    said: dict[str, Any] = {"reachable": problem.answered, "since": iso_time(problem.since)}
    if reason:
        said["error"] = public_reason(problem.error)
    said["retry"] = iso_time(math.ceil(problem.next_look))
    return said
