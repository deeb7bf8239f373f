"""Knowledge-tracing benchmark: learner-level k-fold cross-validation on real logs.

    python benchmarks/kt.py --data ../shared/data/kt/assist2009.csv.gz --models bkt,pybkt --folds 5 \
        --json benchmarks/results/kt-bkt.json

Protocol. Folds split learners, never rows. With a fold column whose values are all >= 0 (assist2009's
`akt_test_fold`), fold k tests on the learners marked k and trains on all others. With negative values in
it (assist2015's `pykt_fold`, where -1 marks pyKT's held-out test learners), the negative learners are the
test set of every fold and fold k trains on the non-negative learners other than k (pyKT leaves fold k out
for validation; the BKT models validate nothing, so it is simply unused). Without a fold column, learners
are hashed into folds (`learner_folds`). Every test row is predicted from that learner's own earlier rows
only, and rows of one question attempt (a multi-skill problem expanded per skill) are merged into one
prediction (the mean) before scoring, as in pyKT.

Our BKT variants: `bkt` (per-skill BKT, Corbett & Anderson 1995), `bkt-idem` (+ guess/slip per problem,
KT-IDEM), `bkt-ind` (+ a prior individualised by the learner's earlier answers), `bkt-forget` (+ forgetting),
`bkt-all` (all three), `bkt-sep` (`bkt` with guess allowed above 1/2, bounded only by guess + slip <= 0.95,
which keeps the known state the one that answers better; the app's skills keep guess below 1/2). On a log
without problem ids `bkt-idem` is `bkt`. `hier`: the hierarchical Bayesian
model (knowledge/tracing/hierarchical.py; the prerequisite graph from --kc-graph or the data set's preset).
`dkt`, `attn`: the deep models (knowledge/tracing/deep.py), early-stopped on 10 % of the training learners.

Models come from `MODELS`: a name -> factory(options) returning an object with `fit(train)` and
`predict(test) -> P(correct) per row` (optionally `fit_seconds`, when it times its own fit, and `device`).
`pybkt` runs pyBKT 1.4.3's C++ build in its own virtual environment (benchmarks/setup_pybkt.sh) through
benchmarks/pybkt_runner.py, which times pyBKT's fit call alone.

Files known by name get their columns without flags (see DATASETS); flags override them.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.tracing.data import (  # noqa: E402
    Interactions,
    learner_folds,
    load_csv,
    merge_question_attempts,
    read_skill_graph,
)
from knowledge.tracing.metrics import all_metrics  # noqa: E402

PYBKT_PYTHON = ROOT / "benchmarks" / ".venv-pybkt" / "bin" / "python"
PYBKT_RUNNER = ROOT / "benchmarks" / "pybkt_runner.py"

# Column presets by file name (the part before the first dot), or by the folder's name for a generic file name
# (dbe_kt22/interactions.csv.gz). "qmatrix" is a file beside the data; so are "kc_graph" (prerequisite edges
# between skills, for the models that use a graph) and "kc_names" (skill id -> name, when the log names skills).
DATASETS = {
    "assist2009": dict(user_col="user_id", seq_col="seq_idx", skill_col="skill_id", problem_col="problem_id",
                       fold_col="akt_test_fold"),
    "assist2015": dict(user_col="user_id", seq_col="seq_idx", skill_col="skill_idx", problem_col=None,
                       fold_col="pykt_fold"),
    "statics2011": dict(user_col="seq_id", seq_col="seq_idx", skill_col=None, problem_col="question_id",
                        fold_col=None, qmatrix="statics2011_qmatrix.csv"),
    "dbe_kt22": dict(user_col="user_id_guess", seq_col="seq_idx", skill_col="primary_kc_name",
                     problem_col="question_id", fold_col=None, kc_graph="KC_Relationships.csv", kc_names="KCs.csv"),
}


# ---- models ---------------------------------------------------------------------------------------------------

def throttled(adapter, describe):
    """A fit's progress callback that shows `describe(step, steps, value)` on the adapter's bar, twice a second
    at most."""
    shown = [0.0]

    def report(step, steps, value):
        if adapter.progress is not None and time.monotonic() - shown[0] > 0.5:
            adapter.progress.set_postfix_str(describe(step, steps, value))
            shown[0] = time.monotonic()

    return report


class BKTAdapter:
    """Our batched BKT (knowledge/tracing/bkt.py) with the given options."""

    warmed_up = False

    def __init__(self, options, **config):
        from knowledge.tracing.bkt import BatchedBKT

        if options.threads:
            config["threads"] = options.threads
        self.model = BatchedBKT(device=options.device, **config)
        self.device = str(self.model.device)
        self.progress = None
        if not BKTAdapter.warmed_up:  # torch's one-off start-up work, outside the timing (as pyBKT's imports are)
            tiny = Interactions(user=[0, 0, 1], seq=[0, 1, 0], skill=[0, 0, 0], correct=[0, 1, 1], problem=[0, 1, 0])
            BatchedBKT(device=options.device, max_iter=2, **config).fit(tiny).predict(tiny)
            BKTAdapter.warmed_up = True

    def fit(self, train: Interactions) -> None:
        self.model.fit(train, progress=throttled(self, lambda i, n, loglik: f"EM {i} loglik/row {loglik:.5f}"))

    def predict(self, test: Interactions) -> np.ndarray:
        return self.model.predict(test)


class PyBKTAdapter:
    """pyBKT 1.4.3 (Badrinath, Wang & Pardos 2021), C++ build, in benchmarks/.venv-pybkt, with its defaults
    (5 random restarts, EM to a log-likelihood change < 1e-3, one model per skill, skills named by our
    skill index). Its KT-IDEM variant (`multigs=True`) is left out of MODELS: its predict fails when the test learners
    met problems the training learners did not (data_helper indexes a table sized by the test set's
    problems with the training set's problem numbers), which a learner split always produces."""

    device = "cpu"

    def __init__(self, options, multigs=False, forgets=False):
        if not PYBKT_PYTHON.exists():
            raise SystemExit(f"pyBKT is not installed: run `bash benchmarks/setup_pybkt.sh` ({PYBKT_PYTHON})")
        self.options, self.multigs, self.forgets = options, multigs, forgets
        self.tmp = tempfile.TemporaryDirectory(prefix="kt-pybkt-")
        self.train = None
        self.fit_seconds = None
        self.peak_mb = None

    @staticmethod
    def _write(path: Path, data: Interactions) -> None:
        problem = data.problem if data.problem is not None else data.skill
        with open(path, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["row_id", "order_id", "user_id", "skill_name", "correct", "problem_id"])
            out.writerows(zip(range(len(data)), range(len(data)), data.user.tolist(), data.skill.tolist(),
                              data.correct.tolist(), problem.tolist(), strict=True))

    def fit(self, train: Interactions) -> None:
        # pyBKT fits and predicts in one subprocess (a fitted model does not outlive it): keep the data.
        self.train = train

    def predict(self, test: Interactions) -> np.ndarray:
        tmp = Path(self.tmp.name)
        self._write(tmp / "train.csv", self.train)
        self._write(tmp / "test.csv", test)
        job = {"train": str(tmp / "train.csv"), "test": str(tmp / "test.csv"), "predictions": str(tmp / "p.npy"),
               "report": str(tmp / "report.json"), "seed": self.options.seed, "multigs": self.multigs,
               "forgets": self.forgets}
        (tmp / "job.json").write_text(json.dumps(job))
        subprocess.run([str(PYBKT_PYTHON), str(PYBKT_RUNNER), str(tmp / "job.json")], check=True)
        report = json.loads((tmp / "report.json").read_text())
        if not report["cpp_extension"]:
            raise SystemExit(f"pyBKT runs its pure-Python fallback ({report['e_step_module']}): rebuild it")
        self.fit_seconds, self.peak_mb = report["fit_seconds"], report["peak_mb"]
        return np.load(tmp / "p.npy")


class DeepAdapter:
    """knowledge/tracing/deep.py models (imported lazily, so this benchmark runs without them), with their
    default hyperparameters on every data set. Early stopping validates on 10 % of the TRAINING learners
    (drawn with --seed inside `fit`); the test learners are seen only by `predict`. On the CPU torch gets
    --threads threads (default 1: these small tensors gain little from a second thread, and lose a lot when
    other work shares the cores)."""

    def __init__(self, options, cls_name, **hyper):
        self.options, self.cls_name, self.hyper, self.model = options, cls_name, hyper, None
        self.device = options.device
        self.progress = None

    def fit(self, train: Interactions) -> None:
        import torch

        from knowledge.tracing import deep

        torch.set_num_threads(self.options.threads or 1)
        cls = getattr(deep, self.cls_name)
        self.model = cls(train.n_skills, train.n_problems, seed=self.options.seed, device=self.options.device,
                         **self.hyper)

        def report(record):
            if self.progress is not None:
                self.progress.set_postfix_str(f"epoch {record['epoch']} valid AUC {record['valid_auc']:.4f}")

        self.model.fit(train, progress=report)
        self.device = str(self.model.device)
        self.fit_seconds = self.model.fit_seconds

    def predict(self, test: Interactions) -> np.ndarray:
        return self.model.predict(test)


class HierAdapter:
    """knowledge/tracing/hierarchical.py: learner traits from population priors, skill and question parameters,
    and the prerequisite graph of the data set's preset (`kc_graph`) or `--kc-graph`, fitted by SVI. Test learners
    get their traits filtered online from their own earlier answers."""

    def __init__(self, options, **config):
        self.options, self.config, self.model = options, config, None
        self.device = options.device
        self.progress = None

    def fit(self, train: Interactions) -> None:
        from knowledge.tracing.hierarchical import HierarchicalKT

        if self.options.threads:
            self.config["threads"] = self.options.threads
        self.model = HierarchicalKT(prerequisites=getattr(self.options, "prerequisites", None),
                                    seed=self.options.seed, device=self.options.device, **self.config)
        self.device = str(self.model.device)
        self.model.fit(train, progress=throttled(self, lambda i, n, loss: f"SVI {i}/{n} loss/row {loss:.4f}"))

    def predict(self, test: Interactions) -> np.ndarray:
        return self.model.predict(test)


MODELS = {
    "bkt": lambda o: BKTAdapter(o),
    "bkt-idem": lambda o: BKTAdapter(o, item_params=True),
    "bkt-ind": lambda o: BKTAdapter(o, learner_prior=True),
    "bkt-forget": lambda o: BKTAdapter(o, forget=True),
    "bkt-all": lambda o: BKTAdapter(o, item_params=True, learner_prior=True, forget=True),
    "bkt-sep": lambda o: BKTAdapter(o, max_guess=0.999),  # only the separation bound limits guess
    "pybkt": lambda o: PyBKTAdapter(o),
    "pybkt-forget": lambda o: PyBKTAdapter(o, forgets=True),
    "hier": lambda o: HierAdapter(o),
    "dkt": lambda o: DeepAdapter(o, "DKT"),
    "attn": lambda o: DeepAdapter(o, "AttentionKT"),
}


# ---- protocol -------------------------------------------------------------------------------------------------

def load_dataset(path: Path, args) -> tuple[str, Interactions, np.ndarray | None]:
    name = path.name.split(".")[0]
    if name not in DATASETS and path.parent.name in DATASETS:
        name = path.parent.name
    cols = dict(DATASETS.get(name, dict(user_col="user_id", seq_col="seq_idx", skill_col="skill_id",
                                         problem_col="problem_id", fold_col=None)))
    for key in ("user_col", "seq_col", "skill_col", "problem_col", "fold_col", "qmatrix"):
        value = getattr(args, key)
        if value is not None:
            cols[key] = None if value.lower() == "none" else value
    if cols.get("qmatrix") and not Path(cols["qmatrix"]).is_absolute():
        cols["qmatrix"] = path.parent / cols["qmatrix"]
    graph = {key: getattr(args, key, None) or cols.get(key) for key in ("kc_graph", "kc_names")}
    cols = {key: value for key, value in cols.items() if key not in graph}
    data, fold = load_csv(path, **cols)
    args.prerequisites = None  # read by the models that use a skill graph (HierAdapter)
    if graph["kc_graph"] and graph["kc_graph"].lower() != "none" and cols.get("skill_col"):
        beside = {key: None if not v or v.lower() == "none" else v if Path(v).is_absolute() else path.parent / v
                  for key, v in graph.items()}
        args.prerequisites = read_skill_graph(path, cols["skill_col"], beside["kc_graph"], beside["kc_names"])
    if args.max_rows and len(data) > args.max_rows:  # whole learners, in file order, up to max_rows rows
        first_row = np.searchsorted(data.user, np.arange(data.n_users))
        data = data.subset(first_row < args.max_rows)
        fold = None if fold is None else fold[: len(data)]
    return name, data, fold


def make_folds(data: Interactions, row_fold: np.ndarray | None, k: int, seed: int):
    """[(fold name, train user mask, test user mask)] following the protocol in the module docstring; `k` and
    `seed` only matter when learners are hashed into folds."""
    if row_fold is None:
        user_fold = learner_folds(np.arange(data.n_users), k, seed)
        present = np.zeros(data.n_users, dtype=bool)
        present[data.user] = True
        return [(str(f), present & (user_fold != f), present & (user_fold == f)) for f in range(k)]
    missing = np.iinfo(np.int64).min
    user_fold = np.full(data.n_users, missing)
    user_fold[data.user] = row_fold
    if (user_fold[data.user] != row_fold).any():
        raise SystemExit("the fold column changes within a learner: it cannot define learner folds")
    present = user_fold != missing
    values = sorted(set(row_fold.tolist()))
    held_out = present & (user_fold < 0)
    if held_out.any():
        return [(str(f), present & (user_fold >= 0) & (user_fold != f), held_out) for f in values if f >= 0]
    return [(str(f), present & (user_fold != f), present & (user_fold == f)) for f in values]


class PeakMemory:
    """Peak resident memory of this process during a block, in MB: Linux lets a process reset its
    high-water mark (clear_refs 5, then VmHWM); elsewhere the lifetime peak (ru_maxrss) is reported."""

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.resettable = True
        except OSError:
            self.resettable = False
        self.peak_mb = None
        return self

    def __exit__(self, *exc):
        if self.resettable:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mb = int(line.split()[1]) / 1024.0
        if self.peak_mb is None:
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_fold(model_name, options, train, test, bar):
    model = MODELS[model_name](options)
    model.progress = bar
    gpu = _cuda_reset()
    with PeakMemory() as memory:
        started = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - started
        predictions = model.predict(test)
    if getattr(model, "fit_seconds", None) is not None:
        fit_seconds = model.fit_seconds  # timed by the model itself (pyBKT: inside its subprocess)
    labels, probs = merge_question_attempts(test, predictions)
    result = {**all_metrics(labels, probs), "fit_seconds": fit_seconds, "train_rows": len(train),
              "test_rows": len(test), "test_attempts": len(labels),
              "device": getattr(model, "device", "cpu"),
              "peak_mb": getattr(model, "peak_mb", None) or memory.peak_mb,
              "load_1m": os.getloadavg()[0]}  # other work on the machine slows every model down
    if gpu:
        result["gpu_peak_mb"] = gpu.max_memory_allocated() / 2**20
    return result


def _cuda_reset():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda
    return None


# ---- report ---------------------------------------------------------------------------------------------------

def environment(args) -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    env = {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "bkt_threads": args.threads or 1,  # BatchedBKT's default: one thread for its many small operations
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_end": os.getloadavg(),
    }
    if PYBKT_PYTHON.exists():
        env["pybkt_python"] = str(PYBKT_PYTHON.relative_to(ROOT))
        env["pybkt_cpp_extension"] = "checked on every pyBKT run (the run stops if the C++ E-step is missing)"
        env["pybkt_packages"] = subprocess.run([str(PYBKT_PYTHON), "-m", "pip", "freeze"], capture_output=True,
                                               text=True).stdout.split()
    return env


def summary_table(results: list[dict]) -> str:
    def mean_sd(values, digits):
        values = np.asarray(values, dtype=float)
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        return f"{values.mean():.{digits}f} ± {sd:.{digits}f}"

    lines = ["| dataset | model | folds | AUC | RMSE | log loss | accuracy | fit s | s per 1M train rows "
             "| peak MB | device |", "|" + "---|" * 11]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    for (dataset, model), rs in groups.items():
        per_million = [r["fit_seconds"] / r["train_rows"] * 1e6 for r in rs]
        lines.append(f"| {dataset} | {model} | {len(rs)} | {mean_sd([r['auc'] for r in rs], 4)} "
                     f"| {mean_sd([r['rmse'] for r in rs], 4)} | {mean_sd([r['logloss'] for r in rs], 4)} "
                     f"| {mean_sd([r['accuracy'] for r in rs], 4)} | {mean_sd([r['fit_seconds'] for r in rs], 2)} "
                     f"| {mean_sd(per_million, 2)} | {max(r['peak_mb'] for r in rs):.0f} | {rs[0]['device']} |")
    speedups = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        peers = {m: rs for (d, m), rs in groups.items() if d == dataset}
        for model, rs in peers.items():
            peer = "pybkt" + model[3:] if model.startswith("bkt") else None
            if peer in peers or (peer and "pybkt" in peers):
                ref = peers.get(peer) or peers["pybkt"]
                ratio = np.mean([r["fit_seconds"] for r in ref]) / np.mean([r["fit_seconds"] for r in rs])
                name = peer if peer in peers else "pybkt"
                delta = np.mean([r["auc"] for r in rs]) - np.mean([r["auc"] for r in ref])
                speedups.append(f"| {dataset} | {model} vs {name} | {ratio:.1f}x | {delta:+.4f} |")
    if speedups:
        lines += ["", "| dataset | fit time ratio (same run) | speed-up | AUC difference |", "|---|---|---|---|"]
        lines += speedups
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, type=Path, help="a log (.csv or .csv.gz)")
    parser.add_argument("--models", default="bkt,pybkt", help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--folds", type=int, default=5, help="folds when learners are hashed (no fold column)")
    parser.add_argument("--max-folds", type=int, help="run only the first N folds")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--fold-col", help="fold column ('none': hash learners into folds)")
    parser.add_argument("--user-col")
    parser.add_argument("--seq-col")
    parser.add_argument("--skill-col", help="skill column ('none': the problem is the skill, or use --qmatrix)")
    parser.add_argument("--problem-col", help="problem column ('none' if there is none)")
    parser.add_argument("--qmatrix", help="problem-by-skill 0/1 CSV (relative paths: beside the data)")
    parser.add_argument("--kc-graph", help="prerequisite edges CSV, skill ids (relative paths: beside the data; "
                        "'none': no graph)")
    parser.add_argument("--kc-names", help="skill id -> name CSV, when the log's skill column holds names")
    parser.add_argument("--max-rows", type=int, help="keep whole learners, in file order, up to N rows")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (our models; pyBKT runs on the CPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads for our BKT (default: BatchedBKT's, 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")

    results = []
    for path in args.data:
        name, data, row_fold = load_dataset(path, args)
        folds = make_folds(data, row_fold, args.folds, args.seed)[: args.max_folds]
        print(f"{name}: {len(data):,} rows, {data.n_users:,} learners, {data.n_skills} skills, "
              f"{len(np.unique(data.attempt)):,} question attempts, {len(folds)} folds", file=sys.stderr)
        bar = tqdm(total=len(folds) * len(models), desc=name, file=sys.stderr)
        for fold, train_users, test_users in folds:
            train, test = data.subset(train_users), data.subset(test_users)
            for model in models:  # models interleaved per fold, so a change in machine load hits all alike
                bar.set_description(f"{name} fold {fold} {model}")
                result = {"dataset": name, "model": model, "fold": fold,
                          **run_fold(model, args, train, test, bar)}
                results.append(result)
                bar.update()
        bar.close()

    table = summary_table(results)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "environment": environment(args),
                                         "table": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
