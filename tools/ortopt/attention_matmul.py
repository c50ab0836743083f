"""Rewrite the attention Einsum nodes of an exported tools/train UNet as MatMul.

torch.onnx.export turns the two einsums of tools/train/unet.py's attention
(before it was written with matrix products) into ONNX Einsum nodes:

    nhdi,nhdj->nhij   scores = q^T k      ->  MatMul(Transpose(q), k)
    nhij,nhdj->nhdi   y = a v^T, per i    ->  Transpose(MatMul(a, Transpose(v)))

ONNX Runtime's CPU Einsum is slower than its MatMul, which its graph optimiser
also fuses with the transposes (FusedMatMul): on the Fashion UNet at 112x112
the two nodes took 13-16% of the operator time as Einsum and 5-10% as MatMul
(examples/ortprof, one thread). The values are those of the same products;
ONNX Runtime's outputs of the two files differ by at most 1e-6.

Usage: /usr/bin/python3 tools/ortopt/attention_matmul.py IN.onnx OUT.onnx
Other Einsum equations are refused. Needs Debian's python3-onnx only.
"""
import sys

import onnx
from onnx import helper


def rewrite(model):
    nodes, count = [], 0
    for n in model.graph.node:
        if n.op_type != "Einsum":
            nodes.append(n)
            continue
        eq = next(a.s for a in n.attribute if a.name == "equation").replace(b" ", b"")
        a, b = n.input
        out = n.output[0]
        if eq == b"nhdi,nhdj->nhij":
            nodes.append(helper.make_node("Transpose", [a], [out + "_aT"], perm=[0, 1, 3, 2], name=n.name + "_aT"))
            nodes.append(helper.make_node("MatMul", [out + "_aT", b], [out], name=n.name + "_MatMul"))
        elif eq == b"nhij,nhdj->nhdi":
            nodes.append(helper.make_node("Transpose", [b], [out + "_bT"], perm=[0, 1, 3, 2], name=n.name + "_bT"))
            nodes.append(helper.make_node("MatMul", [a, out + "_bT"], [out + "_prod"], name=n.name + "_MatMul"))
            nodes.append(helper.make_node("Transpose", [out + "_prod"], [out], perm=[0, 1, 3, 2], name=n.name + "_T"))
        else:
            raise SystemExit(f"{n.name}: equation {eq.decode()} is not one this tool rewrites")
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return count


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = onnx.load(sys.argv[1])
    count = rewrite(model)
    onnx.save(model, sys.argv[2])
    print(f"{sys.argv[2]}: {count} Einsum nodes rewritten")


if __name__ == "__main__":
    main()
