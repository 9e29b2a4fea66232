"""``GET /docs``: the API's page, Swagger UI over ``/openapi.json``.

No package installed here ships Swagger UI's files, so the page loads them from cdn.jsdelivr.net, as FastAPI's
own page does. Where the browser cannot reach that site (offline, behind a firewall), the page says so in
plain words and points to ``/openapi.json`` and the README, rather than staying blank.

The page itself holds no model data (its title and text are the same for every model), so it is open even
where the server has an API key: a browser cannot send a header from its address bar. The document it shows
still needs the key: when ``/openapi.json`` answers 401, the page asks for the key, keeps it in the page
only, and sends it with the document's request and with every request tried from the page.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .middleware import DOCS_PATH

__all__ = ["SWAGGER_CDN", "docs_router"]

SWAGGER_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>mlengineer: API docs</title>
<link rel="stylesheet" href="CDN/swagger-ui.css">
</head>
<body>
<div id="swagger-ui">
<div style="font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5">
<h1>mlengineer: API docs</h1>
<p id="note">This page shows the API with Swagger UI, whose files the browser loads from cdn.jsdelivr.net: it
needs that site to be reachable. Without it (offline, or behind a firewall), read the API's OpenAPI document,
<a href="OPENAPI">OPENAPI</a> (where the server has an API key, send it in the X-API-Key header), or the
README's Serving section.</p>
<form id="key" hidden>
<p id="ask">This server needs an API key to show its document.</p>
<label>API key <input id="value" type="password" autocomplete="off"></label> <button>Show the docs</button>
</form>
</div>
</div>
<script src="CDN/swagger-ui-bundle.js"></script>
<script>
(function () {
  var url = OPENAPI_JSON, key = null;
  if (typeof SwaggerUIBundle === "undefined") {
    document.getElementById("note").insertAdjacentText("afterbegin",
      "Swagger UI could not be loaded from cdn.jsdelivr.net. ");
    return;
  }
  function show(spec) {
    SwaggerUIBundle({spec: spec, dom_id: "#swagger-ui", deepLinking: true, layout: "BaseLayout",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
      requestInterceptor: function (req) { if (key) { req.headers["X-API-Key"] = key; } return req; }});
  }
  function load() {
    fetch(url, {headers: key ? {"X-API-Key": key} : {}}).then(function (r) {
      if (r.status === 401) {
        document.getElementById("key").hidden = false;
        if (key) { document.getElementById("ask").textContent = "That key was not taken: try again."; }
        return null;
      }
      return r.json();
    }).then(function (spec) { if (spec) { show(spec); } });
  }
  document.getElementById("key").addEventListener("submit", function (e) {
    e.preventDefault();
    key = document.getElementById("value").value;
    load();
  });
  load();
})();
</script>
</body>
</html>
"""


def docs_router() -> APIRouter:
    """``GET /docs`` (left out of the OpenAPI document, as FastAPI's own page is)."""
    r = APIRouter()

    @r.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        openapi = request.scope.get("root_path", "") + "/openapi.json"
        page = _PAGE.replace("CDN", SWAGGER_CDN).replace("OPENAPI_JSON", json.dumps(openapi)) \
            .replace("OPENAPI", openapi)
        return HTMLResponse(page)

    return r
