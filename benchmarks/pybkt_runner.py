"""Fit and predict with pyBKT inside its own virtual environment (see setup_pybkt.sh).

Run by benchmarks/kt.py as `benchmarks/.venv-pybkt/bin/python benchmarks/pybkt_runner.py JOB.json`. The job
names a training and a test CSV in pyBKT's column convention (order_id, user_id, skill_name, correct, and
problem_id for the KT-IDEM variant) and the options; this writes the test predictions (in the test file's
row order), the fit time measured around pyBKT's own fit call, the peak memory of this process, and whether
pyBKT's compiled C++ E-step was the one used (its pure-Python fallback is far slower).
"""

import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from pyBKT.fit import E_step
from pyBKT.models import Model


def main(job_path: str) -> None:
    with open(job_path) as fh:
        job = json.load(fh)
    dtypes = {"skill_name": str, "problem_id": str}
    train = pd.read_csv(job["train"], dtype=dtypes)
    test = pd.read_csv(job["test"], dtype=dtypes)
    model = Model(seed=job.get("seed", 0), num_fits=job.get("num_fits", 5), parallel=True)
    options = {"forgets": job.get("forgets", False)}
    if job.get("multigs"):
        options["multigs"] = "problem_id"
    started = time.perf_counter()
    model.fit(data=train, **options)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = model.predict(data=test).sort_values("row_id")
    predict_seconds = time.perf_counter() - started
    np.save(job["predictions"], predicted["correct_predictions"].to_numpy(dtype=np.float64))
    with open(job["report"], "w") as fh:
        json.dump({
            "fit_seconds": fit_seconds,
            "predict_seconds": predict_seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "cpp_extension": E_step.__file__.endswith((".so", ".pyd")),
            "e_step_module": E_step.__file__,
        }, fh)


if __name__ == "__main__":
    main(sys.argv[1])
