"""The OpenAPI document at ``/openapi.json`` (and ``/docs``), built from the routes and then completed for the
model being served: its input record's schema, the request bodies of each protocol, the only model name and
version there are, and the API key's security schemes when the server has one. Rebuilt after a hot swap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import schemas as S
from .middleware import OPEN_PATHS

if TYPE_CHECKING:
    from .service import Service

__all__ = ["install_openapi"]


def install_openapi(app: FastAPI, service: Service) -> None:
    """Make ``app.openapi()`` answer with the document for the model ``service`` serves."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        app.openapi_schema = document(app, service)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    service.on_swap.append(lambda _: setattr(app, "openapi_schema", None))


def document(app: FastAPI, service: Service) -> dict[str, Any]:
    """The OpenAPI document of ``app`` serving ``service.served``."""
    from .routes.explain import openapi_schemas

    served = service.served
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = doc.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    for name, schema in openapi_schemas().items():
        schemas.setdefault(name, schema)
    comps["schemas"] = schemas = dict(sorted(schemas.items()))  # in FastAPI's own order, as if a route had it
    schemas["Record"] = S.record_schema(served)
    ref = "#/components/schemas/{model}"
    for name, schema in S.InferRequest.model_json_schema(ref_template=ref).get("$defs", {}).items():
        schemas.setdefault(name, schema)
    infer_schema = S.InferRequest.model_json_schema(ref_template=ref)
    infer_schema.pop("$defs", None)
    schemas["InferRequest"] = infer_schema
    # the only names and versions there are, so generated requests (and readers) reach the model
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param.get("name") == "model_name":
                    param["schema"] = {"type": "string", "enum": [served.name]}
                elif param.get("name") == "model_version":
                    param["schema"] = {"type": "string", "enum": [served.version]}
    bodies = S.request_bodies(served)
    comps["requestBodies"] = {"Predict": bodies["/predict"], "Invocations": bodies["/invocations"],
                              "Infer": bodies["/infer"]}
    if service.settings.resolved_api_key():
        comps["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                    "Bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"ApiKey": []}, {"Bearer": []}]
        for path, ops in doc.get("paths", {}).items():
            if path in OPEN_PATHS:
                for op in ops.values():
                    op["security"] = []
    return doc
