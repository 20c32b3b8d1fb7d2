"""Executes the evcxr (Rust) notebooks headless and fails on any error.

    run_notebooks.py [--out DIR | --in-place] NOTEBOOK...

A notebook fails on a compile error, a panic (init.evcxr sets `:preserve_vars_on_panic 0`, so
the kernel aborts), a timeout, a dead kernel, an error output, anything on stderr (evcxr reports
a top-level `?` error only there), or when it shows no chart (an image/svg+xml or image/png
output). Executed copies go to --out (default target/notebooks); --in-place rewrites the
notebooks themselves, which is how the committed outputs are made. The last line reads
`N passed, N failed`; the exit status is 1 when any failed.

Parameters reach the notebooks as environment variables (KD_NOTEBOOK_SIZE=small|full).
"""

import argparse
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

CHART_TYPES = ("image/svg+xml", "image/png")


def problems_in(notebook):
    """Error outputs, stderr text and a missing chart, as messages."""
    problems, charts = [], 0
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                problems.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif kind == "stream" and output.get("name") == "stderr" and output.get("text", "").strip():
                problems.append(f"cell {index} wrote to stderr:\n    " + output["text"].strip().replace("\n", "\n    ")[:2000])
            elif kind in ("display_data", "execute_result") and any(t in output.get("data", {}) for t in CHART_TYPES):
                charts += 1
    if charts == 0:
        problems.append("no chart output (image/svg+xml or image/png)")
    return problems


def run(path, out_path, timeout):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validator.normalize(notebook)
    client = NotebookClient(
        notebook,
        kernel_name="rust",
        timeout=timeout,
        startup_timeout=120,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    problems = []
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError, RuntimeError) as error:
        # RuntimeError: the kernel died before it started.
        problems.append(f"{type(error).__name__}: {str(error).strip()[-3000:]}")
    seconds = time.monotonic() - started
    problems += [p for p in problems_in(notebook) if p not in problems]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(out_path.name + ".partial")
    nbformat.write(notebook, temporary)
    temporary.replace(out_path)
    return problems, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=pathlib.Path, default=pathlib.Path("target/notebooks"))
    where.add_argument("--in-place", action="store_true", help="write the outputs into the notebooks themselves")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args()

    passed, failed = 0, 0
    for path in sorted(p.resolve() for p in args.notebooks):
        out_path = path if args.in_place else args.out.resolve() / path.name
        print(f"==> {path.name}", flush=True)
        problems, seconds = run(path, out_path, args.timeout)
        if problems:
            failed += 1
            print(f"FAILED {path.name} ({seconds:.0f} s; executed copy: {out_path})")
            for problem in problems:
                print(f"  - {problem}")
        else:
            passed += 1
            print(f"ok     {path.name} ({seconds:.0f} s)")
        sys.stdout.flush()
    print(f"notebooks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
