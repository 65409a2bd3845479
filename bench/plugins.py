"""What plugin kinds cost at import: ``import lsx.models`` in a fresh process, with no plugin
installed (A) and with examples/own_vae installed (B, its entry point checked on two random
inputs), alternated A,B,A,B in the same run; print JSON.

    python bench/plugins.py               # 6 pairs
    python bench/plugins.py --pairs 2     # a quick run

The plugin is installed as tests/plugin_site.py installs it: its modules plus a ``*.dist-info``
(entry_points.txt from its pyproject.toml) on PYTHONPATH. Each process runs with 1 torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled

CODE = (
    "import time, torch; torch.set_num_threads(1); t = time.perf_counter(); import lsx.models as m;"
    " import_s = time.perf_counter() - t; t = time.perf_counter(); m.load_plugins();"
    " print(import_s, time.perf_counter() - t, len(m.PLUGINS), len(m.PLUGIN_PROBLEMS))"
)


def run(pythonpath: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*pythonpath, str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return {"import_s": float(out[0]), "rediscover_s": float(out[1]), "plugins": int(out[2]),
            "problems": int(out[3])}  # fmt: skip


def main() -> None:
    from tests.plugin_site import example_site

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=6)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site, example = example_site(Path(tmp))
        a, b = [], []
        run([])  # warm the file cache once, unmeasured
        for _ in range(args.pairs):
            a.append(run([]))
            b.append(run([str(site), str(example)]))
    assert all(r["plugins"] == 0 for r in a)
    assert all(r["plugins"] == 1 for r in b)
    assert not any(r["problems"] for r in a + b)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(json.dumps({
        "bench": "plugins",
        "pairs": args.pairs,
        "import_lsx_models_s": {"no_plugin": med(a, "import_s"), "own_vae": med(b, "import_s")},
        "import_ratio_own_vae_vs_none": med(b, "import_s") / med(a, "import_s"),
        "per_pair_ratios": [y["import_s"] / x["import_s"] for x, y in zip(a, b, strict=True)],
        "load_plugins_again_s": {"no_plugin": med(a, "rediscover_s"),
                                 "own_vae": med(b, "rediscover_s")},
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
