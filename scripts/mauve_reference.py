#!/usr/bin/env python3
"""MAUVE reference values from the `mauve-text` package (Pillutla et al. 2021's own code).

    scripts/mauve_reference.py            # writes tests/fixtures/mauve/reference.json
    scripts/mauve_reference.py RUN_DIR    # compares a run's summary.csv `mauve` column with
                                          # mauve-text on the run's features.jsonl

Runs in a venv in the system temp dir (created on first use):
    python3 -m venv /tmp/minigpt-mauve-venv
    /tmp/minigpt-mauve-venv/bin/pip install mauve-text numpy scikit-learn faiss-cpu

The fixture holds two kinds of cases:
  - `curves`: fixed cluster labels, so the histograms, the divergence curve and the area are
    deterministic; minigpt must match them to rounding (mauve.compute_mauve's own
    get_divergence_curve_for_multinomials and sklearn's auc, as compute_mauve calls them).
  - `end_to_end`: feature arrays and compute_mauve's output with its defaults (seed 25). The
    k-means starts differ (faiss's draws against minigpt's), so minigpt must fall within the
    reference's own spread over 20 k-means seeds (`mauve_by_seed`), widened by 0.01.
"""
import csv
import json
import os
import sys
from pathlib import Path

VENV = Path(os.environ.get("TMPDIR", "/tmp")) / "minigpt-mauve-venv"
if Path(sys.prefix) != VENV:
    py = VENV / "bin" / "python"
    if not py.exists():
        import subprocess

        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call(
            [str(VENV / "bin" / "pip"), "install", "-q", "mauve-text", "numpy", "scikit-learn", "faiss-cpu"]
        )
    os.execv(str(py), [str(py), *sys.argv])

import numpy as np  # noqa: E402
from mauve.compute_mauve import compute_mauve, get_divergence_curve_for_multinomials  # noqa: E402
from sklearn.metrics import auc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "mauve" / "reference.json"


def area(p, q):
    """compute_mauve's lines from the curve to `mauve_score`, verbatim."""
    mixture_weights = np.linspace(1e-6, 1 - 1e-6, 25)
    divergence_curve = get_divergence_curve_for_multinomials(p, q, mixture_weights, 5)
    x, y = divergence_curve.T
    idxs1 = np.argsort(x)
    idxs2 = np.argsort(y)
    score = 0.5 * (auc(x[idxs1], y[idxs1]) + auc(y[idxs2], x[idxs2]))
    return divergence_curve, score


def hist(labels, k):
    """cluster_feats' histogram of labels, normalised."""
    counts = np.histogram(labels, bins=k, range=[0, k], density=False)[0]
    return counts / counts.sum()


def curve_cases():
    rng = np.random.default_rng(7)
    cases = []
    for n_p, n_q, k, skew in [
        (48, 16, 2, 0.0),
        (48, 16, 2, 2.0),
        (300, 100, 10, 0.5),
        (500, 500, 50, 1.0),
        (40, 40, 4, 3.0),  # some clusters empty on one side
        (400, 250, 25, 0.2),
    ]:
        weights_q = np.ones(k) / k
        weights_p = np.exp(skew * rng.normal(size=k))
        weights_p /= weights_p.sum()
        p_labels = rng.choice(k, size=n_p, p=weights_p)
        q_labels = rng.choice(k, size=n_q, p=weights_q)
        p, q = hist(p_labels, k), hist(q_labels, k)
        if np.array_equal(p, q):
            continue  # ties: numpy's unstable argsort decides the reference's area
        curve, score = area(p, q)
        cases.append(
            {
                "p_labels": p_labels.tolist(),
                "q_labels": q_labels.tolist(),
                "k": k,
                "p_hist": p.tolist(),
                "q_hist": q.tolist(),
                "curve": curve.tolist(),
                "mauve": float(score),
            }
        )
    return cases


def pca_dims(p, q):
    """Components cluster_feats keeps: its lines from `normalize` to `idx`, verbatim."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import normalize

    data1 = normalize(np.vstack([q, p]).astype(np.float32), norm="l2", axis=1)
    pca = PCA(n_components=None, whiten=False, random_state=25 + 1)
    pca.fit(data1)
    s = np.cumsum(pca.explained_variance_ratio_)
    idx = np.argmax(s >= 0.9)
    return int(idx + 1)


def end_to_end_cases():
    rng = np.random.default_rng(11)
    cases = []
    # (name, n_p, n_q, dim, how p differs from q)
    for name, n_p, n_q, dim, mode in [
        ("clusters_same", 48, 16, 16, "same"),
        ("clusters_shifted_weights", 200, 200, 16, "weights"),
        ("clusters_missing_mode", 120, 120, 16, "missing"),
        ("gaussian_shift", 200, 200, 16, "shift"),
    ]:
        k_true = 6
        centres = rng.normal(size=(k_true, dim)) * 4.0
        if mode == "shift":
            q = rng.normal(size=(n_q, dim))
            p = rng.normal(size=(n_p, dim)) + 0.5
        else:
            wq = np.ones(k_true) / k_true
            if mode == "same":
                wp = wq
            elif mode == "weights":
                wp = np.array([0.4, 0.3, 0.1, 0.1, 0.05, 0.05])
            else:
                wp = np.array([0.0, 0.0, 0.25, 0.25, 0.25, 0.25])
            q = centres[rng.choice(k_true, size=n_q, p=wq)] + rng.normal(size=(n_q, dim))
            p = centres[rng.choice(k_true, size=n_p, p=wp)] + rng.normal(size=(n_p, dim))
        # Three decimals keep the fixture small; the f32 of each stored value is what both sides use.
        p, q = np.round(p, 3), np.round(q, 3)
        out = compute_mauve(p_features=p.astype(np.float32), q_features=q.astype(np.float32))
        cases.append(
            {
                "name": name,
                "p": p.tolist(),
                "q": q.tolist(),
                "buckets": int(out.num_buckets),
                "pca_dims": pca_dims(p, q),
                "mauve": float(out.mauve),
                # The reference's own spread over k-means seeds: the tolerance end to end.
                "mauve_by_seed": [
                    float(compute_mauve(p_features=p.astype(np.float32), q_features=q.astype(np.float32), seed=s).mauve)
                    for s in range(20)
                ],
            }
        )
    return cases


def compare_run(run_dir):
    """mauve-text on a run's features, per cell, beside the run's own `mauve` column."""
    run_dir = Path(run_dir)
    feats = {}
    with open(run_dir / "features.jsonl") as f:
        for line in f:
            r = json.loads(line)
            feats[(r["strategy"], r["temperature"], r["prompt_id"], r["sample"])] = r["features"]
    human = [v for (s, _, _, _), v in feats.items() if s == "human"]
    outside = 0
    with open(run_dir / "summary.csv") as f:
        for row in csv.DictReader(f):
            if row["strategy"] == "human" or not row.get("mauve"):
                continue
            t = float(row["temperature"]) if row["temperature"] else None
            p = [v for (s, tt, _, _), v in feats.items() if s == row["strategy"] and tt == t]
            p, q = np.array(p, dtype=np.float32), np.array(human, dtype=np.float32)
            ref = compute_mauve(p_features=p, q_features=q, verbose=False).mauve
            # The reference's spread over k-means seeds, as in the end-to-end fixture.
            by_seed = [compute_mauve(p_features=p, q_features=q, seed=s, verbose=False).mauve for s in range(20)]
            lo, hi = min(by_seed), max(by_seed)
            ours = float(row["mauve"])
            inside = lo - 0.01 <= ours <= hi + 0.01
            outside += not inside
            print(
                f"{row['strategy']:>16} T={str(t):<5} minigpt {ours:.4f}  mauve-text {ref:.4f} "
                f"(20 seeds {lo:.4f}..{hi:.4f}){'' if inside else '  OUTSIDE'}"
            )
    print(f"cells outside the reference's seed range (±0.01): {outside}")


def main():
    if len(sys.argv) > 1:
        compare_run(sys.argv[1])
        return
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "source": "scripts/mauve_reference.py: mauve-text (compute_mauve, get_divergence_curve_for_multinomials), sklearn auc",
        "curves": curve_cases(),
        "end_to_end": end_to_end_cases(),
    }
    FIXTURE.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
