"""Executes the evcxr (Rust) notebooks headless and fails on any error.

    run_notebooks.py [--out DIR | --in-place] [--jobs N] NOTEBOOK... [--must-fail NOTEBOOK...]

A notebook fails on a compile error, a panic (init.evcxr sets `:preserve_vars_on_panic 0`, so
the kernel aborts), a timeout, a dead kernel, an error output, anything on stderr, a `?` whose
error would leave the cell's own code (evcxr reports such an error only as a stderr line, which
can arrive after the cell has finished and be lost, so it is rejected before running), or when
it shows no chart (an image/svg+xml or image/png output). Executed copies go to --out (default target/notebooks); --in-place rewrites the
notebooks themselves, which is how the committed outputs are made. The runner ends with
`notebooks: N passed, N failed`; the exit status is 1 when any failed.

The notebooks after --must-fail check the runner itself: each must fail, and for the reason its
metadata names (`kd.expect_failure`, a substring of the report); see notebooks/must-fail/.
Their executed copies go to --out's must-fail/, and their line reads `runner self-check: N
passed, N failed`.

Parameters reach the notebooks as environment variables (KD_NOTEBOOK_SIZE=small|full).

With --jobs N (N > 1) the shortest notebook runs alone, in evcxr's build folder (EVCXR_TMPDIR),
and compiles the dependencies there; that folder is then copied to N - 1 more, and the rest run
N at a time, the longest first. A small notebook leaves a core idle a third of the time (waiting
on the kernel), which a second kernel fills. How long a notebook takes is what it took last time
(kd-notebook-seconds.json in the build folder), else what notebooks/small-seconds.json says: a
scheduling hint for a fresh machine, which orders the notebooks and decides nothing else.
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

CHART_TYPES = ("image/svg+xml", "image/png")
# Each notebook's seconds at the small size on a 2-core machine: orders a fresh machine's run.
HINT_FILE = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "small-seconds.json"


LITERAL_OR_COMMENT = re.compile(
    r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?\'(?:\\.|[^\\\'])\'', re.S
)
FUNCTION_HEAD = re.compile(r"(\bfn\b[^;{}]*|\|[^|;{}]*\|\s*(->[^;{}]*)?)$")


def top_level_question_marks(code):
    """Line numbers of `?` operators outside any fn or closure body of a cell."""
    code = LITERAL_OR_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)
    lines, in_function, statement_start = [], [], 0
    for at, char in enumerate(code):
        if char == "{":
            in_function.append(bool(FUNCTION_HEAD.search(code[statement_start:at].rstrip())))
            statement_start = at + 1
        elif char == "}":
            if in_function:
                in_function.pop()
            statement_start = at + 1
        elif char == ";":
            statement_start = at + 1
        elif char == "?" and not any(in_function) and not code.startswith("Sized", at + 1):
            lines.append(code.count("\n", 0, at) + 1)
    return lines


# (cell code, lines of top-level `?`) for --self-test.
QUESTION_MARK_CASES = [
    ('let n: i32 = "abc".parse()?;', [1]),
    ('{ let n: i32 = "abc".parse()?; }', [1]),
    ("for x in xs {\n    y(x)?;\n}", [2]),
    ('fit(&stage, |epoch, model| { let x = step()?; Ok(x) }).expect("fit");', []),
    ("fn f<T: ?Sized>(x: &T) -> Result<(), E> { g()?; Ok(()) }", []),
    ("let f = move |x: u32| -> Result<u32, E> { Ok(h(x)?) };", []),
    ("svg(|root| {\n    root.fill(&WHITE).map_err(|e| e.to_string())?;\n    Ok(())\n})", []),
    ("let s = \"what?\"; let c = '?';\n// why?\nlet r = r#\"a?\"#;", []),
]


def self_test():
    failed = 0
    for code, expected in QUESTION_MARK_CASES:
        found = top_level_question_marks(code)
        if found != expected:
            failed += 1
            print(f"FAILED top-level `?` lines {found}, expected {expected}, in: {code!r}")
    print(f"runner self-test: {len(QUESTION_MARK_CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


def static_problems(notebook):
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            for line in top_level_question_marks(cell.source):
                problems.append(f"cell {index} line {line}: top-level `?`: evcxr would report its error only on stderr; use .expect(...)")
    return problems


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


def lane_folders(jobs):
    """evcxr's build folder for each of `jobs` kernels: EVCXR_TMPDIR, then copies beside it."""
    base = os.environ.get("EVCXR_TMPDIR")
    if not base:
        return [None]
    return [base] + [f"{base}-lane{k}" for k in range(1, jobs)]


def mirror(source, target):
    """Makes `target` a copy of the build folder `source`, whose dependencies are compiled.
    The incremental caches stay behind: most of the size, and no dependency rebuilds without
    them."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("incremental"))


def claim_lane(lanes):
    """A worker's initializer: take a build folder of its own for every notebook it runs."""
    os.environ["EVCXR_TMPDIR"] = lanes.get()


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
    problems = static_problems(notebook)
    # The kernel's temporary folder (notebooks keep checkpoints there) goes when the notebook ends.
    scratch = tempfile.mkdtemp(prefix="kd-notebook-")
    outer_tmpdir = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = scratch
    try:
        if not problems:
            client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError, RuntimeError) as error:
        # RuntimeError: the kernel died before it started.
        problems.append(f"{type(error).__name__}: {str(error).strip()[-3000:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if outer_tmpdir is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = outer_tmpdir
    seconds = time.monotonic() - started
    problems += [p for p in problems_in(notebook) if p not in problems]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(out_path.name + ".partial")
    nbformat.write(notebook, temporary)
    temporary.replace(out_path)
    return problems, seconds, notebook.metadata.get("kd", {}).get("expect_failure")


def read_durations(path):
    """Each notebook's seconds in the last run, to start the longest first."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_durations(path, durations):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(durations, indent=1, sort_keys=True))
    temporary.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--self-test", action="store_true", help="check the runner's own code reading, then exit")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=pathlib.Path, default=pathlib.Path("target/notebooks"))
    where.add_argument("--in-place", action="store_true", help="write the outputs into the notebooks themselves")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=1, help="kernels at a time (each after the first in a copy of the build folder)")
    parser.add_argument("--must-fail", nargs="*", type=pathlib.Path, default=[], help="notebooks that must fail, each for the reason its metadata names")
    args = parser.parse_args()
    if args.self_test:
        return self_test()

    out = args.out.resolve()
    must_fail = {p.resolve() for p in args.must_fail}
    paths = sorted(p.resolve() for p in args.notebooks) + sorted(must_fail)
    out_paths = {
        path: path if args.in_place else (out / "must-fail" if path in must_fail else out) / path.name for path in paths
    }
    durations_file = pathlib.Path(os.environ.get("EVCXR_TMPDIR") or out) / "kd-notebook-seconds.json"
    durations = read_durations(durations_file)
    # A fresh build folder has no record yet: the committed hint orders its first run.
    expected_seconds = {**read_durations(HINT_FILE), **durations}
    tally = {"notebooks": [0, 0], "runner self-check": [0, 0]}

    def report(path, problems, seconds, expected, compiled_dependencies=False):
        # The first notebook's time includes whatever the build folder had to compile: not its own.
        if not compiled_dependencies:
            durations[path.name] = round(seconds)
        if path in must_fail:
            # Passes when some problem names the expected reason; else the runner missed a failure.
            text = "\n".join(problems)
            caught = bool(expected) and expected in text
            problems = [] if caught else [f"expected a failure naming {expected!r}; the runner reported: {text or 'nothing'}"]
        counts = tally["runner self-check" if path in must_fail else "notebooks"]
        if problems:
            counts[1] += 1
            print(f"FAILED {path.name} ({seconds:.0f} s; executed copy: {out_paths[path]})")
            for problem in problems:
                print(f"  - {problem}")
        else:
            counts[0] += 1
            print(f"ok     {path.name} ({seconds:.0f} s{'; failed as it must: ' + expected if path in must_fail else ''})")
        sys.stdout.flush()

    # The lone notebook only has to compile the dependencies: the shortest that must pass.
    regular = [path for path in paths if path not in must_fail]
    first = [min(regular, key=lambda path: expected_seconds.get(path.name, 0))] if regular else paths[:1]
    rest = [path for path in paths if path not in first]
    lanes = lane_folders(min(args.jobs, len(rest)))
    if len(lanes) < 2:
        first, rest = paths, []
    for index, path in enumerate(first):
        print(f"==> {path.name}", flush=True)
        report(path, *run(path, out_paths[path], args.timeout), compiled_dependencies=index == 0)
    if rest:
        for lane in lanes[1:]:
            mirror(lanes[0], lane)
        context = multiprocessing.get_context("spawn")
        free = context.Queue()
        for lane in lanes:
            free.put(lane)
        rest.sort(key=lambda path: -expected_seconds.get(path.name, 0))
        print(f"==> {', '.join(path.name for path in rest)}: {len(lanes)} at a time", flush=True)
        with concurrent.futures.ProcessPoolExecutor(len(lanes), mp_context=context, initializer=claim_lane, initargs=(free,)) as pool:
            running = {pool.submit(run, path, out_paths[path], args.timeout): path for path in rest}
            for done in concurrent.futures.as_completed(running):
                report(running[done], *done.result())
    write_durations(durations_file, durations)
    for name, (passed, failed) in tally.items():
        if name == "notebooks" or must_fail:
            print(f"{name}: {passed} passed, {failed} failed")
    return 1 if any(failed for _, failed in tally.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
