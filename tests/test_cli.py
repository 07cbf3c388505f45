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
