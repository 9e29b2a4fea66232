"""schemathesis against the server's own OpenAPI document, every endpoint: generated requests (valid and
not) never get a 5xx, and every answer matches the status codes, content types, headers and schemas the
document declares. The model has a column of every role; the server requires an API key. A longer run is
recorded in bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .test_serve_basic import running_server
from .test_serve_validation import roles_model_dir, roles_table  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance")


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
        roles_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    exe = Path(sys.executable).parent / "schemathesis"
    with running_server(roles_model_dir, "--no-prediction-log", "--no-access-log", cwd=tmp_path,
                        env={"MLENGINEER_API_KEY": "k3y"}) as srv:
        r = subprocess.run([str(exe), "run", f"{srv.url}/openapi.json", "--checks", CHECKS, "--max-examples", "20",
                            "--seed", "7", "--header", "X-API-Key: k3y", "--request-timeout", "30"],
                           capture_output=True, text=True, timeout=400, cwd=tmp_path)
        server_log = srv.output()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "Tested: 16" in out and " passed" in out, out[-3000:]
    assert "Traceback" not in server_log, server_log[-3000:]
