"""Bad names fail before any cell starts, with one line listing the valid names."""
import pytest

from tests.helpers import run_cli


@pytest.mark.parametrize("args, expected", [
    (["-m", "model=llava,gpt4", "source_task=glob(*)"], "unknown model 'gpt4'"),
    (["model=qwen", "source_task=Countng"], "unknown source_task 'Countng'"),
    (["-m", "model=qwen", "source_task=glob(Z*)"], "matches no source_task"),
    (["model=qwen", "hydra/launcher=slurmm"], "unknown hydra/launcher 'slurmm'"),
])
def test_unknown_names_fail_in_one_line(args, expected, tmp_path):
    out = run_cli(args, tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and expected in out.stderr
    assert "expected" in out.stderr and ("Counting" in out.stderr or "idefics" in out.stderr or "local" in out.stderr)
    assert not any(tmp_path.iterdir())          # nothing started


@pytest.mark.parametrize("jobs", ["0", "two", "-1"])
def test_cells_at_once_must_be_a_whole_number(jobs, tmp_path):
    out = run_cli(["-m", "model=qwen", "source_task=Counting,Jigsaw", f"hydra.launcher.jobs={jobs}"], tmp_path)
    assert out.returncode == 2 and not any(tmp_path.iterdir())
    expected = f"error: hydra.launcher.jobs={jobs}: expected auto or a whole number of cells at once, >= 1"
    assert out.stderr.strip() == expected


def test_reduce_without_cells_is_a_one_line_error(tmp_path):
    out = run_cli([], tmp_path, module="transfer.reduce")
    assert out.returncode == 2 and out.stderr.strip().startswith("error:") and "\n" not in out.stderr.strip()


@pytest.mark.parametrize("override, expected", [
    ("eval.merge_lora=maybe", "error: eval.merge_lora='maybe': expected true or false"),
    ("eval.calibration=platt", "error: eval.calibration='platt': expected one of: none, batch"),
])
def test_bad_eval_options_fail_before_a_cell_starts(override, expected, tmp_path):
    out = run_cli(["model=qwen", "source_task=Counting", override], tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == expected
    assert not list(tmp_path.rglob("cells"))   # no cell folder, nothing trained


def test_help_and_the_readme_agree(tmp_path):
    """Every config group that --help lists is in the README's table, and so is every entry point --help names."""
    import re

    from tests.helpers import ROOT

    out = run_cli(["--help"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    readme = (ROOT / "README.md").read_text()
    groups = re.findall(r"^([a-z_/]+): ", out.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0],
                        re.M)
    assert {"model", "source_task", "data", "pretrain", "train", "eval", "experiment"} <= set(groups)
    for group in groups:
        assert f"| `{group}` |" in readme, group
    for module in set(re.findall(r"python -m (transfer\.\w+)", out.stdout)):
        assert f"python -m {module}" in readme, module
    for option in re.findall(r"^model: (.*)$", out.stdout, re.M)[0].split(", "):
        assert option.replace("qwen2.5vl-3b", "qwen2.5vl-3b/7b/32b") in readme or option in (
            "qwen2.5vl-7b", "qwen2.5vl-32b"), option
