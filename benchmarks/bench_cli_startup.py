"""Start-up time of `turbo-hf --help`, and what it imports.

Times the installed console script (the interpreter's own `bin/turbo-hf`, not a pyenv shim, which
adds its own start-up), `python -m turbo_hf.cli --help`, a subcommand's `--help`, and for scale a
bare interpreter and `import torch`, each the median of `--runs` fresh processes. Then lists the
third-party top-level packages that `--help` imports beyond a bare interpreter's.

    python benchmarks/bench_cli_startup.py
    python benchmarks/bench_cli_startup.py --runs 9
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

_MODULES_AFTER_HELP = """
import contextlib, io, json, sys
before = set(sys.modules)
from turbo_hf.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(json.dumps(sorted({name.split(".")[0] for name in set(sys.modules) - before})))
"""


def _median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command (median)")
    args = parser.parse_args()

    script = Path(sys.executable).parent / "turbo-hf"
    commands = {
        "turbo-hf --help (console script)": [str(script), "--help"] if script.is_file() else None,
        "python -m turbo_hf.cli --help": [sys.executable, "-m", "turbo_hf.cli", "--help"],
        "python -m turbo_hf.cli evaluate --help": [
            sys.executable,
            "-m",
            "turbo_hf.cli",
            "evaluate",
            "--help",
        ],
        "python -c pass (bare interpreter)": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "python -c 'import transformers'": [sys.executable, "-c", "import transformers"],
    }
    print(f"median of {args.runs} runs, {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    print("| command | seconds |")
    print("|---|---|")
    timings = {}
    for name, command in commands.items():
        if command is None:
            print(f"| {name} | not installed ({script}) |")
            continue
        timings[name] = _median_seconds(command, args.runs)
        print(f"| {name} | {timings[name]:.3f} |")
    torch_time = timings["python -c 'import torch'"]
    help_time = timings["python -m turbo_hf.cli --help"]
    print(f"\n`--help` takes {help_time / torch_time:.2f}x the time of `import torch` alone")

    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER_HELP], check=True, capture_output=True, text=True
    )
    stdlib = set(sys.stdlib_module_names)
    imported = [name for name in json.loads(done.stdout) if name not in stdlib and not name.startswith("_")]
    print(f"packages imported by `--help` beyond the standard library: {imported}")
    heavy = [name for name in ("torch", "transformers", "datasets", "numpy") if name in imported]
    print(f"of torch / transformers / datasets / numpy: {heavy or 'none'}")


if __name__ == "__main__":
    main()
