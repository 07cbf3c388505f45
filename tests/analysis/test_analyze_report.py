"""analyze(): the analysis.json contract, atomic outputs, figures, and the report in headless Chromium."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tests.helpers import long_frame
from transfer.analysis import analyze, plot_heatmap
from transfer.analysis.report import SECTIONS
from transfer.tasks import TASK_NAMES

TASKS = TASK_NAMES[:6]


def _sweep(rng) -> pl.DataFrame:
    frames = []
    for k, model in enumerate(["fam-1B", "fam-7B"]):
        cube = rng.normal(0.05 * (k + 1), 0.2, (3, 6, 6))
        cube[:, 0, :] += 0.3
        frames.append(long_frame(cube, TASKS, model))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    rng = np.random.default_rng(0)
    pgf = _sweep(rng)
    intervals = (pgf.group_by("model", "source_task", "target_task").agg(pl.col("pgf").mean().alias("m"))
                 .with_columns((pl.col("m") - 0.15).alias("ci_low"), (pl.col("m") + 0.15).alias("ci_high")))
    accuracy = pl.DataFrame({"model": ["fam-1B"] * 6, "target_task": TASKS, "accuracy": np.linspace(0.4, 0.9, 6),
                             "source_task": "none"})
    out = tmp_path_factory.mktemp("analysis")
    result = analyze(pgf, out, intervals=intervals, accuracy=accuracy, setup={"sweep": "unit-test", "seeds": 3},
                     persona_permutations=300)
    return out, result, pgf


def test_analysis_json_has_the_agreed_shape(analysed):
    out, result, _ = analysed
    data = json.loads((out / "analysis.json").read_text())
    assert data["diagonal"] == "excluded"
    assert list(data["models"]) == ["fam-1B", "fam-7B"]
    for entry in data["models"].values():
        assert set(entry["transferability"]) == set(TASKS) == set(entry["malleability"])
        for task_scores in (*entry["transferability"].values(), *entry["malleability"].values()):
            assert isinstance(task_scores["positive"], float) and task_scores["negative"] <= 0
        assert isinstance(entry["average_positive_transferability"], float)
        assert set(entry["cliques"]) == {"positive", "negative"}
        assert all(isinstance(c, list) and all(t in TASKS for t in c) for c in entry["cliques"]["positive"])
        assert set(entry["personas"]) == {"donor", "pirate", "sponge", "sieve"}
    assert data["models"]["fam-1B"]["average_positive_transferability"] == pytest.approx(
        result["models"]["fam-1B"]["average_positive_transferability"])
    assert "NaN" not in (out / "analysis.json").read_text()            # strict JSON


def test_outputs_are_complete_and_written_atomically(analysed):
    out, result, _ = analysed
    assert not list(out.rglob("*.tmp"))
    for path in [result["figures"]["comparison"], result["figures"]["scores"], result["figures"]["report"],
                 *result["figures"]["fam-1B"].values()]:
        assert path.exists() and path.stat().st_size > 1000
    expected = {"scores", "cliques", "personas", "selection", "edges", "intervals", "baseline_accuracy"}
    assert expected <= set(result["tables"])
    assert (out / "tables" / "personas.csv").exists()
    assert set(result["timings"]) == {"analysis", "figures", "report"}


def test_diagonal_switch_is_reported_and_changes_scores(analysed, tmp_path):
    _, excluded, pgf = analysed
    one_model = pgf.filter(pl.col("model") == "fam-1B")
    included = analyze(one_model, tmp_path, include_diagonal=True, persona_permutations=50)
    assert included["diagonal"] == "included"
    assert json.loads((tmp_path / "analysis.json").read_text())["diagonal"] == "included"
    a = excluded["models"]["fam-1B"]["transferability"][TASKS[0]]["positive"]
    b = included["models"]["fam-1B"]["transferability"][TASKS[0]]["positive"]
    assert a != pytest.approx(b)


def test_report_is_self_contained_with_all_sections(analysed):
    out, _, _ = analysed
    page = (out / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:|//|/)', page)           # nothing fetched from outside
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 * 2 + 2                                      # heatmap + graph per model, comparison, scores
    for data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).size[0] > 300
    for heading in SECTIONS:
        assert f">{heading}</h2>" in page
    assert "unit-test" in page and "fam-7B" in page


def test_heatmap_marks_cells_whose_interval_contains_zero(tmp_path):
    matrix = np.array([[0.8, -0.8], [0.0, 0.5]])
    plain = np.asarray(Image.open(plot_heatmap(matrix, TASKS[:2], "t", tmp_path / "a.png")).convert("RGB"))
    mask = np.array([[True, False], [True, True]])
    marked = np.asarray(Image.open(plot_heatmap(matrix, TASKS[:2], "t", tmp_path / "b.png", mask)).convert("RGB"))
    assert plain.shape == marked.shape and (plain != marked).any(axis=2).sum() > 500
    with pytest.raises(ValueError, match="shape"):
        plot_heatmap(matrix, TASKS[:3], "t", tmp_path / "c.png")


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _headless(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=90)


def test_report_renders_in_headless_chromium(analysed, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install -y --no-install-recommends chromium)")
    out, _, _ = analysed
    url = (out / "report.html").as_uri()
    dom = _headless(binary, "--dump-dom", url).stdout
    for heading in ("PGF matrices", "Transfer graphs", "Cliques", "Personas", "Data-selection advice"):
        assert f">{heading}</h2>" in dom
    assert dom.count('alt="heatmap ') == 2 and dom.count('alt="transfer graph ') == 2
    shot = tmp_path / "shot.png"
    _headless(binary, "--window-size=1200,9000", f"--screenshot={shot}", url)
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    colourful = (image.max(axis=2) - image.min(axis=2)) > 60               # saturated pixels: heatmaps, graph
    rows = colourful.reshape(30, -1, image.shape[1]).mean(axis=(1, 2))     # 30 horizontal bands of 300 px
    assert (rows > 0.02).sum() >= 6, "too few bands with rendered figures"
    assert colourful.mean() > 0.01


def test_single_model_single_seed_runs_and_leaves_std_empty(tmp_path):
    pgf = long_frame(np.random.default_rng(4).normal(0.1, 0.2, (1, 5, 5)), TASKS[:5], "solo")
    result = analyze(pgf, tmp_path, persona_permutations=50)
    entry = json.loads((tmp_path / "analysis.json").read_text())["models"]["solo"]
    assert entry["seeds"] == ["0"] and entry["average_positive_transferability_std"] is None
    assert entry["transferability"][TASKS[0]]["positive_std"] is None
    assert result["cross_model"]["size_trend"] == []
    assert (tmp_path / "report.html").exists()


def test_partial_grid_and_bad_intervals(tmp_path):
    # only 3 of the 6 tasks were finetuned on: they are the only sources, all 6 are targets
    pgf = long_frame(np.random.default_rng(5).normal(0.1, 0.2, (2, 6, 6)), TASKS, "part").filter(
        pl.col("source_task").is_in(TASKS[:3]))
    result = analyze(pgf, tmp_path, persona_permutations=50)
    entry = result["models"]["part"]
    assert set(entry["transferability"]) == set(TASKS[:3]) and set(entry["malleability"]) == set(TASKS)
    assert set(entry["personas"]["donor"] + entry["personas"]["pirate"]) <= set(TASKS[:3])   # only sources
    with pytest.raises(ValueError, match="intervals frame lacks columns"):
        analyze(pgf, tmp_path, intervals=pl.DataFrame({"model": ["part"]}))
