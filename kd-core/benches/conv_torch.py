#!/usr/bin/env python3
"""PyTorch CPU timings of the convolution and pooling workloads in conv.rs, for the ratio column.

Usage: conv_torch.py THREADS < workloads.json > timings.json
Each workload: {"name", "kind", "batch", "in", "out", "size", "kernel", "stride", "padding"}, kind
one of conv, transposed (weight (in, out, k, k), as F.conv_transpose2d takes it), max_pool and
avg_pool (no weight).
Prints {"name": {"forward_ms": .., "train_ms": ..}}: the fastest of `repeats` runs after warm-up,
as conv.rs times kd.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
workloads = json.load(sys.stdin)
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "timings": {}}


def fastest_ms(fn, repeats):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


for w in workloads:
    x = torch.randn(w["batch"], w["in"], w["size"], w["size"])
    bias = torch.zeros(w["out"])
    geometry = dict(stride=w["stride"], padding=w["padding"])
    kind = w["kind"]
    if kind == "transposed":
        weight = torch.randn(w["in"], w["out"], w["kernel"], w["kernel"]) * 0.1
        conv = lambda xx, ww, bb: F.conv_transpose2d(xx, ww, bb, **geometry)
    elif kind == "conv":
        weight = torch.randn(w["out"], w["in"], w["kernel"], w["kernel"]) * 0.1
        conv = lambda xx, ww, bb: F.conv2d(xx, ww, bb, **geometry)
    elif kind == "max_pool":
        weight = torch.zeros(1)
        conv = lambda xx, ww, bb: F.max_pool2d(xx, w["kernel"], **geometry)
    elif kind == "avg_pool":
        weight = torch.zeros(1)
        conv = lambda xx, ww, bb: F.avg_pool2d(xx, w["kernel"], **geometry)
    else:
        raise ValueError(f"unknown workload kind {kind!r}")
    with torch.no_grad():
        probe = torch.randn_like(conv(x, weight, bias))

    def forward():
        with torch.no_grad():
            conv(x, weight, bias)

    pooling = kind.endswith("_pool")
    xg = x.clone().requires_grad_(True)
    wg, bg = weight.clone().requires_grad_(not pooling), bias.clone().requires_grad_(not pooling)

    def train():
        conv(xg, wg, bg).backward(probe)
        xg.grad = wg.grad = bg.grad = None

    out["timings"][w["name"]] = {"forward_ms": fastest_ms(forward, w["repeats"]), "train_ms": fastest_ms(train, w["repeats"])}

json.dump(out, sys.stdout)
