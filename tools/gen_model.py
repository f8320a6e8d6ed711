#!/usr/bin/env python3
"""Regenerate crates/wire/model/kinesis.json from botocore's Kinesis service model.

The server validates every request against the model's shapes (types, required members, lengths,
ranges, patterns, enums). We keep only what validation needs: no documentation, no outputs' docs.

    python3 -m venv /tmp/gen && /tmp/gen/bin/pip install botocore
    /tmp/gen/bin/python tools/gen_model.py
"""
import gzip
import json
import os

import botocore

SRC = os.path.join(os.path.dirname(botocore.__file__), "data", "kinesis", "2013-12-02", "service-2.json.gz")
DST = os.path.join(os.path.dirname(__file__), "..", "crates", "wire", "model", "kinesis.json")
KEEP = ("type", "required", "min", "max", "pattern", "enum", "eventstream", "exception")


def main():
    model = json.load(gzip.open(SRC))
    shapes = {}
    for name, shape in model["shapes"].items():
        out = {k: shape[k] for k in KEEP if k in shape}
        if shape["type"] == "structure":
            out["members"] = [[m, spec["shape"]] for m, spec in shape["members"].items()]
        elif shape["type"] == "list":
            out["member"] = shape["member"]["shape"]
        elif shape["type"] == "map":
            out["key"] = shape["key"]["shape"]
            out["value"] = shape["value"]["shape"]
        shapes[name] = out
    ops = {}
    for name, op in sorted(model["operations"].items()):
        ops[name] = {"input": op.get("input", {}).get("shape"), "output": op.get("output", {}).get("shape")}
        # AWS's own plane of the operation ("control" or "data", from the endpoint rules'
        # OperationType); crates/wire/src/operation.rs checks its table against it.
        plane = op.get("staticContextParams", {}).get("OperationType", {}).get("value")
        if plane:
            ops[name]["plane"] = plane
    doc = {
        "source": "botocore %s kinesis 2013-12-02" % botocore.__version__,
        "targetPrefix": model["metadata"]["targetPrefix"],
        "operations": ops,
        "shapes": dict(sorted(shapes.items())),
    }
    with open(DST, "w") as f:
        json.dump(doc, f, indent=0, sort_keys=False)
        f.write("\n")
    print("wrote", DST, len(ops), "operations", len(shapes), "shapes")


if __name__ == "__main__":
    main()
