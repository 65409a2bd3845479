"""Out-of-distribution detection on every shipped demo run: false-positive rate on held-out test
images and detection rate per OOD class; print a JSON table.

    python bench/ood.py                 # every checkpoints/demo-* run, the whole test split
    python bench/ood.py --n-test 500    # as tests/analysis/test_ood.py (at most 500 images)

Per run the test split is shuffled (seed 0) and halved: the detector
(:func:`lsx.analysis.ood.fit_detector`, which itself scales on one half of what it gets and
sets the threshold on the other) is fitted on the first half; the false-positive rate is the
share of the second half flagged by the Lookup page's verdict
(:attr:`lsx.analysis.lookup.ImageLookup.ood`). OOD classes: ``photo`` (skimage's astronaut and
coffee, scikit-learn's china, through the upload path), ``noise`` (20 uniform images),
``blank`` (all 0), ``white`` (all 1; a training class of the textures data), ``inverted``
(``1 - x`` of 50 held-out test images).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=0, help="test images per run (0: all)")
    parser.add_argument("--only", nargs="*", default=None, help="run names (default: all demos)")
    args = parser.parse_args()

    import torch

    from tests.analysis.test_ood import DEMOS, evaluate

    torch.set_num_threads(1)
    rows = []
    for name in args.only or DEMOS:
        start = time.perf_counter()
        res = evaluate(name, args.n_test or 10**9)
        res["seconds"] = round(time.perf_counter() - start, 2)
        res["fpr"] = round(res["fpr"], 4)
        res["detected"] = {c: round(v, 3) for c, v in res["detected"].items()}
        rows.append(res)
        print(json.dumps(res), file=sys.stderr, flush=True)
    print(json.dumps({"n_test": args.n_test or "all", "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
