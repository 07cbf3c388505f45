"""The W&B dashboard: the spec of a hand-made sweep (golden file), its wandb_workspaces round trip, saving it
against a fake W&B server (only the HTTP endpoint is fake: wandb-core makes real requests), and the CLI."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.fake_wandb import KEY, FakeWandb, operations, serve
from transfer import dashboard
from transfer.atomic import write_parquet
from transfer.dashboard import build_spec, panel_keys
from transfer.records import SCORE_SCHEMA, cell_dir
from transfer.reduce import missing_cells
from transfer.tasks import TASKS

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic V1 style:DeprecationWarning")   # wandb-workspaces 0.4
GOLDEN = Path(__file__).parent / "data" / "dashboard_golden.json"
MODELS, SOURCES, SEEDS = ["llava", "qwen"], ["none", "Counting", "Jigsaw"], [0, 1]
TARGETS = ["Counting", "Jigsaw", "Relative_Depth"]
FAILED = ("qwen", "Jigsaw", 1)   # this cell raised: no scores, a FAILED marker, status failed in missing.parquet


def _score_rows(model: str, source: str, seed: int) -> list[dict]:
    rows = []
    for i, target in enumerate(TARGETS):
        correct = 8 + i + (3 if source == target else 0) + seed + (model == "qwen")
        rows.append({"sweep": "demo", "model": model, "checkpoint": f"tiny-{model}", "data_source": "synthetic",
                     "calibration": "none", "source_task": source, "seed": seed, "target_task": target, "n": 20,
                     "correct": correct, "accuracy": correct / 20, "chance": TASKS[target].chance,
                     "train_examples": 0 if source == "none" else 64, "train_steps": 0 if source == "none" else 8,
                     "train_seconds": 1.0, "eval_seconds": 1.0, "config_hash": f"hash-{model}",
                     "git_commit": "abc123", "created_at": "2026-01-01T00:00:00+00:00"})
    return rows


def _analysis(model: str) -> dict:
    """The analysis.json entry of one model, with only the keys build_spec reads."""
    positive = [{"sign": "positive", "tasks": ["Counting", "Jigsaw", "Relative_Depth"], "mean_pgf": 0.1234,
                 "p_value": 0.0312, "maximum": True},
                {"sign": "positive", "tasks": ["Counting", "Jigsaw"], "mean_pgf": 0.05, "p_value": 0.2,
                 "maximum": False}]
    return {"clique_tests": {"positive": positive if model == "llava" else [], "negative": []},
            "personas": {"donor": ["Counting"], "pirate": [], "sponge": ["Relative_Depth"], "sieve": []},
            "data_selection": {"Jigsaw": [{"source": "Counting", "pgf": 0.214}, {"source": "Relative_Depth",
                                                                                "pgf": 0.118}]},
            "figures": {"heatmap": f"heatmap_{model}.png", "graph": f"figures/graph_{model}.png"}}


def make_sweep(root: Path) -> Path:
    """outputs/demo: 2 models x {none, Counting, Jigsaw} x 2 seeds (one failed) and the reducer's records."""
    sweep = root / "demo"
    for model in MODELS:
        for source in SOURCES:
            for seed in SEEDS:
                cell = cell_dir(sweep, model, source, seed)
                if (model, source, seed) == FAILED:
                    cell.mkdir(parents=True)
                    (cell / "FAILED.json").write_text(json.dumps({"cell": str(cell), "error": "CUDA out of memory"}))
                    continue
                write_parquet(pl.DataFrame(_score_rows(model, source, seed), schema=SCORE_SCHEMA),
                              cell / "scores.parquet")
                write_parquet(pl.DataFrame({"idx": ["q1"]}), cell / "predictions.parquet")   # a finished cell
    scores = pl.concat(pl.read_parquet(p) for p in sorted(sweep.glob("cells/*/*/*/scores.parquet")))
    failed = [{"cell": str(cell_dir(sweep, *FAILED)), "error": "CUDA out of memory"}]
    write_parquet(missing_cells(scores, failed), sweep / "reduce" / "missing.parquet")
    analysis = {"settings": {"selection_threshold": 0.1}, "models": {m: _analysis(m) for m in MODELS},
                "figures": {"comparison": "figures/comparison.png", "scores": "figures/scores.png",
                            "report": "report.html"}}
    (sweep / "reduce" / "analysis.json").write_text(json.dumps(analysis))
    return sweep


@pytest.fixture
def sweep(tmp_path) -> Path:
    return make_sweep(tmp_path / "outputs")


@pytest.fixture
def spec(sweep) -> dict:
    return build_spec(sweep, entity="team", project="transfer")


def test_the_spec_of_a_small_sweep_matches_the_golden_file(spec):
    if os.environ.get("UPDATE_GOLDEN") == "1":
        dashboard.write_spec(spec, GOLDEN)
    assert json.loads(json.dumps(spec)) == json.loads(GOLDEN.read_text()), "UPDATE_GOLDEN=1 rewrites the golden file"


def test_the_spec_counts_the_cells_and_writes_the_findings(spec):
    assert spec["grid"]["cells"]["qwen"] == {"done": 5, "failed": ["Jigsaw/seed=1"],
                                             "missing": spec["grid"]["cells"]["qwen"]["missing"]}
    assert len(spec["grid"]["cells"]["qwen"]["missing"]) == 2 * 11        # 11 source tasks never run, 2 seeds
    assert spec["grid"]["sources"] == ["none", "Counting", "Jigsaw"] and spec["grid"]["targets"] == TARGETS
    blocks = spec["report"]["blocks"]
    panels = [p for b in blocks if b["type"] == "panel_grid" for p in b["panels"]]
    text = "\n".join(x["text"] for x in blocks + panels if x["type"] == "markdown")
    assert "{Counting, Jigsaw, Relative_Depth} (mean PGF +0.123, p = 0.0312)" in text
    assert "- Jigsaw ← Counting (+0.21), Relative_Depth (+0.12)" in text
    assert "**donor** (lifts other tasks): Counting" in text and "Failed: qwen/Jigsaw/seed=1" in text


def test_the_spec_is_deterministic_and_needs_no_reducer_outputs(sweep):
    first = build_spec(sweep, entity=None, project="p")
    assert json.dumps(first) == json.dumps(build_spec(sweep, entity=None, project="p"))
    for name in ("missing.parquet", "analysis.json"):
        (sweep / "reduce" / name).unlink()
    bare = build_spec(sweep, entity=None, project="p")
    assert bare["grid"] == first["grid"]                                   # missing cells computed from the cells
    assert "No analysis for this model yet" in json.dumps(bare["report"])
    assert not any(s["name"].startswith("Reduce") for s in bare["workspace"]["sections"])   # no reduce run yet


def _contract_keys(models: list[str], targets: list[str]) -> set[str]:
    """The keys the runs log (transfer.tracking's contract): cell history and summary (the tables `scores` and
    `eval/letters` among them), the reduce run's tables and media."""
    keys = {"train/loss", "train/learning_rate", "train/step_time", "train/grad_norm", "train/global_step",
            "eval/mean_accuracy", "eval/letters", "scores", "pgf/mean_offdiag", "status", "pgf", "figures/comparison",
            "figures/scores", "report", *(f"analysis/{t}" for t in ("scores", "cliques", "personas", "selection"))}
    for t in targets:
        keys |= {f"eval/{t}/{k}" for k in ("accuracy", "stderr", "chance", "accuracy_raw", "unparsed",
                                          "top_letter_share")}
        keys |= {f"pgf/{t}", f"pgf/{t}/ci_low", f"pgf/{t}/ci_high", f"dacc/{t}"}
    for m in models:
        keys |= {f"pgf_{m}", f"accuracy_{m}", f"figures/heatmap_{m}", f"figures/graph_{m}"}
    return keys


def test_every_key_a_panel_reads_is_logged(spec):
    keys = panel_keys(spec)
    assert {"train/loss", "eval/Jigsaw/accuracy", "eval/Jigsaw/top_letter_share", "eval/letters", "pgf/Counting",
            "figures/heatmap_qwen", "analysis/cliques"} <= keys
    assert keys <= _contract_keys(MODELS, TARGETS), keys - _contract_keys(MODELS, TARGETS)


@pytest.mark.skipif(not os.environ.get("DASHBOARD_SWEEP"), reason="DASHBOARD_SWEEP=outputs/<sweep> with offline runs")
def test_every_key_a_panel_reads_is_in_the_offline_runs_of_a_real_sweep():
    from transfer.wandb_files import read_run

    sweep = Path(os.environ["DASHBOARD_SWEEP"])
    runs = [read_run(d) for d in sorted((sweep / "wandb").glob("offline-run-*"))]
    logged = {k for r in runs for k in r["summary"]} | {k for r in runs for row in r["history"] for k in row}
    assert panel_keys(build_spec(sweep, entity=None, project="transfer")) - logged == set()


# ---------------------------------------------------------------- saving, against a fake W&B server

@pytest.fixture
def fake_wandb(monkeypatch):
    pytest.importorskip("wandb_workspaces")
    with serve(monkeypatch) as base:
        yield base


def _unread(dump):
    """A model dump without what wandb-workspaces 0.4.13's _from_model does not read back: the layout of a
    WeavePanelSummaryTable (it returns the default) and a Report's width (it returns "readable")."""
    if isinstance(dump, list):
        return [_unread(x) for x in dump]
    if not isinstance(dump, dict):
        return dump
    lost = {"layout"} if dump.get("view_type") == "Weave" else {"width"} if "blocks" in dump else set()
    return {k: _unread(v) for k, v in dump.items() if k not in lost}


def test_the_spec_round_trips_through_the_wandb_workspaces_models(spec, fake_wandb):
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces.reports.v2.internal import ReportViewspec
    from wandb_workspaces.workspaces.internal import View, WorkspaceViewspec

    view = dashboard.to_workspace(spec)._to_model()                          # to the wire and back, as save/load do
    wire = WorkspaceViewspec.model_validate_json(view.spec.model_dump_json(by_alias=True, exclude_none=True))
    back = ws.Workspace._from_model(View(**{**dict(view), "spec": wire}))._to_model()
    assert _unread(back.model_dump()) == _unread(view.model_dump())
    sections = view.spec.section.panel_bank_config.sections
    assert [(s.name, len(s.panels)) for s in sections] == [(s["name"], len(s["panels"]))
                                                           for s in spec["workspace"]["sections"]]

    report = dashboard.to_report(spec)._to_model()
    wire = ReportViewspec.model_validate({**report.model_dump(by_alias=True),
                                          "spec": report.spec.model_dump_json(by_alias=True, exclude_none=True)})
    back = wr.Report._from_model(wire)._to_model()
    assert _unread(back.model_dump()) == _unread(report.model_dump())
    assert len(report.spec.blocks) == len(spec["report"]["blocks"]) + 2      # the Report adds an empty P each end
    assert set(operations()) == {"Viewer", "ProjectInternalId"}              # the runsets' project lookups


def test_save_upserts_the_workspace_and_the_report_and_returns_their_urls(spec, fake_wandb):
    urls = dashboard.save({**spec, "entity": None})                          # the entity: the viewer's default
    upserts = {c["operation"]: c["variables"] for c in FakeWandb.calls if c["operation"].lower().startswith("upsert")}
    workspace, report = upserts["UpsertView2"], upserts["upsertView"]
    assert (workspace["entityName"], workspace["projectName"], workspace["type"]) == ("me", "transfer", "project-view")
    view = json.loads(workspace["spec"])["section"]
    names = [s["name"] for s in spec["workspace"]["sections"]]
    assert [s["name"] for s in view["panelBankConfig"]["sections"]] == names
    assert [g["name"] for g in view["runSets"][0]["grouping"]] == ["model.value", "source_task.value"]
    assert view["runSets"][0]["filters"]["filters"][0] | {"disabled": False} == {
        "key": {"section": "run", "name": "group"}, "op": "=", "value": "demo", "disabled": False}
    grids = [b for b in json.loads(report["spec"])["blocks"] if b["type"] == "panel-grid"]
    bars = [p["config"] for g in grids for p in g["metadata"]["panelBankSectionConfig"]["panels"]
            if p["viewType"] == "Bar Chart" and p["config"].get("groupBy")]
    assert {(b["groupBy"], b["groupAgg"], b["groupArea"]) for b in bars} == {("source_task.value", "mean", "stddev")}
    assert (report["entityName"], report["type"], report["displayName"]) == ("me", "runs", "transfer sweep demo")
    assert len(json.loads(report["spec"])["blocks"]) == len(spec["report"]["blocks"]) + 2
    assert "CreateProject" in operations()                                  # the fake server lists no projects
    view_id = workspace["name"].removeprefix("nw-").removesuffix("-v")      # the name save() generated
    assert urls["workspace"] == f"{fake_wandb}/me/transfer?nw={view_id}"
    assert urls["report"] == f"{fake_wandb}/me/transfer/reports/transfer-sweep-demo--VmlldzoxMjM="


def test_the_cli_saves_and_prints_the_urls(sweep, fake_wandb, capsys):
    assert dashboard.main([f"outputs={sweep.parent}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["workspace", "report"] and fake_wandb in lines[1]


def test_the_cli_reports_a_failed_save_on_one_line(sweep, fake_wandb, capsys):
    FakeWandb.fail = {"UpsertView2"}
    assert dashboard.main([f"outputs={sweep.parent}", "sweep=demo"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("dashboard not saved to W&B: ") and "UpsertView2 refused" in out


@pytest.mark.parametrize("mode, key, reason", [("offline", KEY, "WANDB_MODE=offline"),
                                               ("online", None, "no W&B credentials")])
def test_the_cli_without_credentials_writes_the_spec_and_says_so_on_one_line(sweep, monkeypatch, capsys, tmp_path,
                                                                            mode, key, reason):
    monkeypatch.setenv("WANDB_MODE", mode)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)
    if key:
        monkeypatch.setenv("WANDB_API_KEY", key)
    else:
        monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert dashboard.main([f"outputs={sweep.parent}", "project=transfer"]) == 0
    out, path = capsys.readouterr().out, sweep / "reduce" / "dashboard.json"
    assert out.count("\n") == 1 and reason in out and str(path) in out
    assert json.loads(path.read_text()) == json.loads(json.dumps(build_spec(sweep, entity=None, project="transfer")))


def test_the_cli_without_wandb_workspaces_says_how_to_install_it(sweep, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.setitem(sys.modules, "wandb_workspaces", None)               # `import wandb_workspaces` fails
    assert dashboard.main([f"outputs={sweep.parent}"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "pip install .[dashboard]" in out and (sweep / "reduce" / "dashboard.json").exists()


@pytest.mark.parametrize("args, message", [
    (["colour=red"], "unknown argument 'colour=red'; expected KEY=VALUE with KEY in sweep, outputs, project, entity"),
    (["sweep=../x"], "sweep='../x': expected one folder name"),
    (["sweep=a/b"], "sweep='a/b': expected one folder name"),
    (["outputs={file}"], "expected a folder holding sweeps (this path is a file)"),
    (["outputs={empty}"], "no sweep with finished cells under"),
    (["outputs={outputs}", "sweep=nope"], "no finished cells under"),
])
def test_the_cli_rejects_bad_arguments_on_one_line(sweep, tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    paths = {"file": tmp_path / "file", "empty": tmp_path / "empty", "outputs": sweep.parent}
    assert dashboard.main([a.format(**paths) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and message in captured.err
    assert not (sweep / "reduce" / "dashboard.json").exists()
