#!/usr/bin/env python3
"""PyTorch CPU timings of the convolution workloads in conv.rs, for the ratio column.

Usage: conv_torch.py THREADS < workloads.json > timings.json
Each workload: {"name", "transposed", "batch", "in", "out", "size", "kernel", "stride", "padding"};
a transposed one has weight (in, out, k, k), as F.conv_transpose2d takes it.
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
    if w["transposed"]:
        weight = torch.randn(w["in"], w["out"], w["kernel"], w["kernel"]) * 0.1
        conv = lambda xx, ww, bb: F.conv_transpose2d(xx, ww, bb, stride=w["stride"], padding=w["padding"])
    else:
        weight = torch.randn(w["out"], w["in"], w["kernel"], w["kernel"]) * 0.1
        conv = lambda xx, ww, bb: F.conv2d(xx, ww, bb, stride=w["stride"], padding=w["padding"])
    with torch.no_grad():
        probe = torch.randn_like(conv(x, weight, bias))

    def forward():
        with torch.no_grad():
            conv(x, weight, bias)

    xg, wg, bg = x.clone().requires_grad_(True), weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)

    def train():
        conv(xg, wg, bg).backward(probe)
        xg.grad = wg.grad = bg.grad = None

    out["timings"][w["name"]] = {"forward_ms": fastest_ms(forward, w["repeats"]), "train_ms": fastest_ms(train, w["repeats"])}

json.dump(out, sys.stdout)
