"""Draws the comparison chart (PNG) from the JSON files of compare.py, streaming.py and clients.py.

Usage: python3 Benchmarks/Compare/chart.py RESULTS_DIR OUTPUT.png
(RESULTS_DIR holds unary.json, streaming.json, clients.json; missing files leave their panels out.)
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"courier": "#d9480f", "grpc-c++": "#1971c2", "grpc-go": "#2f9e44", "grpc-swift": "#868e96",
          "grpc-swift-tuned": "#495057", "courier client": "#d9480f", "grpc-c++ client": "#1971c2"}


def load(directory, name):
    path = os.path.join(directory, name)
    return json.load(open(path)) if os.path.exists(path) else []


def bars(axis, rows, key, title, unit, label_key="server"):
    names = [row[label_key] for row in rows]
    values = [row[key] for row in rows]
    colors = [COLORS.get(name, "#adb5bd") for name in names]
    axis.bar(range(len(rows)), values, color=colors)
    axis.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
    axis.set_title(title, fontsize=9)
    axis.set_ylabel(unit, fontsize=8)
    axis.tick_params(axis="y", labelsize=8)
    for index, value in enumerate(values):
        axis.annotate(f"{value:,.0f}", (index, value), ha="center", va="bottom", fontsize=7)


def main():
    directory, output = sys.argv[1], sys.argv[2]
    unary = load(directory, "unary.json")
    streaming = load(directory, "streaming.json")
    clients = load(directory, "clients.json")
    panels = []
    for scenario_prefix, key, title, unit in [
        ("(b)", "median", "(b) unary 4×64, 1 KiB: requests/s", "req/s"),
        ("(b)", "per_cpu", "(b) requests per server CPU-second", "req/CPU-s"),
        ("(a) 1x1, 1 KiB", "p50", "(a) unary 1×1, 1 KiB: p50 latency (lower is better)", "µs"),
        ("(c)", "megabytes", "(c) unary 1 MiB, 1×4: MB/s", "MB/s"),
    ]:
        rows = [row for row in unary if row["scenario"].startswith(scenario_prefix)]
        if rows:
            panels.append((rows, key, title, unit, "server"))
    for scenario_prefix, title in [("(d) ping-pong, 64", "(d) ping-pong, 64 streams: round trips/s"),
                                   ("(e)", "(e) server streaming 1 KiB: messages/s")]:
        rows = [row for row in streaming if row["scenario"].startswith(scenario_prefix)]
        if rows:
            panels.append((rows, "median", title, "msgs/s", "server"))
    if clients:
        panels.append((clients, "per_client_cpu", "(f) clients vs grpc C++ server: req per client CPU-s",
                       "req/CPU-s", "client"))
    columns = 3
    rows_count = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows_count, columns, figsize=(4.2 * columns, 3.4 * rows_count), squeeze=False)
    for axis, (rows, key, title, unit, label_key) in zip(axes.flat, panels):
        bars(axis, rows, key, title, unit, label_key)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.suptitle("Courier vs grpc C++ 1.51, grpc-go 1.33, grpc-swift 2.4 — server on 1 core, load on the other "
                    "(medians)", fontsize=10)
    figure.tight_layout()
    figure.savefig(output, dpi=110)


if __name__ == "__main__":
    main()
