"""Rewrite an ONNX file in a canonical form, so that one conversion gives one sha256.

tf2onnx names nodes and tensors in an order that changes from run to run (it iterates sets of
objects), so two conversions of the same TF.js model differ byte for byte while computing the same
thing. This renames every initializer by its content, orders the nodes topologically with ties
broken by what they compute, names each node's outputs in that order, and clears free-text fields.
Graph inputs and outputs keep their names. Usage (in the conversion venv, which has onnx):

    python canonical_onnx.py IN.onnx OUT.onnx
"""

from __future__ import annotations

import hashlib
import sys

import onnx
from onnx import numpy_helper


def canonical(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    rename: dict[str, str] = {n: n for n in keep}
    inits: dict[str, onnx.TensorProto] = {}
    for t in g.initializer:
        arr = numpy_helper.to_array(t)
        digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes())
        new = rename.get(t.name) or f"init_{digest.hexdigest()[:16]}"
        rename[t.name] = new
        inits.setdefault(new, numpy_helper.from_array(arr, new))
    known = set(rename)
    pending = list(g.node)
    order: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i == "" or i in known for i in n.input)]
        if not ready:
            raise SystemExit("canonical_onnx: the graph has a cycle or an undefined input")

        def key(n: onnx.NodeProto) -> bytes:
            ordered = sorted(n.attribute, key=lambda a: a.name)
            attrs = b"".join(a.SerializeToString() for a in ordered)
            ins = ",".join(rename.get(i, "") for i in n.input)
            return f"{n.domain}|{n.op_type}|{ins}|{len(n.output)}|".encode() + attrs

        ready.sort(key=key)
        node = ready[0]
        pending.remove(node)
        step = len(order)
        for j, o in enumerate(node.output):
            if o and o not in keep:
                rename[o] = f"t{step}_{j}"
            known.add(o)
        order.append(node)
    nodes = []
    for step, n in enumerate(order):
        nodes.append(
            onnx.helper.make_node(
                n.op_type,
                [rename.get(i, "") if i else "" for i in n.input],
                [rename.get(o, o) if o else "" for o in n.output],
                name=f"n{step}_{n.op_type}",
                domain=n.domain or None,
            )
        )
        nodes[-1].attribute.extend(sorted(n.attribute, key=lambda a: a.name))
    graph = onnx.helper.make_graph(
        nodes, "nanodet", list(g.input), list(g.output), [inits[k] for k in sorted(inits)]
    )
    out = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    out.producer_name = model.producer_name
    out.producer_version = model.producer_version
    onnx.checker.check_model(out)
    return out


if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    onnx.save(canonical(onnx.load(src)), dst)
