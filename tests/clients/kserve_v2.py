"""Run by tests/test_serve_clients.py in a separate virtual environment that has KServe's Python package
(kserve pins pandas, protobuf and more against mlengineer's own): its v2 REST client against a running
mlengineer server. Prints one JSON object: health, readiness and the outputs of a JSON and a binary infer.

    python kserve_v2.py URL MODEL ROWS.json
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def inputs(rows: dict, types: dict[str, str], binary: bool) -> list[InferInput]:
    out = []
    for name, values in rows.items():
        datatype = types[name]
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64) if datatype == "FP64" \
            else np.array(values, dtype=object)
        x = InferInput(name, [len(values)], datatype)
        x.set_data_from_numpy(arr, binary_data=binary)
        out.append(x)
    return out


async def main(url: str, model: str, rows_path: str) -> dict:
    with open(rows_path, encoding="utf-8") as f:
        rows = json.load(f)
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=60))
    try:
        result = {"live": await client.is_server_live(url), "ready": await client.is_model_ready(url, model)}
        for mode in ("json", "binary"):
            binary = mode == "binary"  # binary tensors in, and the outputs asked for as binary data too
            wanted = [RequestedOutput(name, parameters={"binary_data": True}) for name in ("prediction", "probabilities")]
            request = InferRequest(model_name=model, infer_inputs=inputs(rows["columns"], rows["types"], binary),
                                   request_id=f"kserve-{mode}", request_outputs=wanted if binary else None)
            response = await client.infer(url, request, model_name=model)
            result[mode] = {"id": response.id, "model_name": response.model_name,
                            "outputs": {o.name: np.asarray(o.as_numpy()).tolist() for o in response.outputs}}
        return result
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4])), default=lambda v: v.decode() if isinstance(v, bytes) else str(v)))
