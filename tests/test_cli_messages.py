"""What a newcomer reads: one-line errors that say what is wrong and what was meant, help that shows each
default once as it is typed, and output that fits the terminal without the runtime's chatter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from finetune import cli

_ROOT = Path(__file__).resolve().parents[1]
_TFLITE = Path("/work/shared/real/mobilenet_v1_0.25_128_quant.tflite")


def _refused(argv: list[str], capsys) -> str:
    """The one stderr line of a command line that argparse refuses with exit status 2."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1, captured.err
    return captured.err.rstrip("\n")


@pytest.mark.parametrize("argv, line", [
    (["--datset", "x"], "finetune: error: unrecognized arguments: --datset x (did you mean --dataset?)"),
    (["--net", "mobilenet_v1_025", "--bacth-size=8"],
     "finetune: error: unrecognized arguments: --bacth-size=8 (did you mean --batch-size?)"),
    (["train", "--datset", "x"], "finetune train: error: unrecognized arguments: --datset x (did you mean --dataset?)"),
    (["eval", "--trian-dir", "runs/x"],
     "finetune eval: error: unrecognized arguments: --trian-dir runs/x (did you mean --train-dir?)"),
    (["--frobnicate"], "finetune: error: unrecognized arguments: --frobnicate (`finetune --help` lists the flags)"),
])
def test_a_mistyped_flag_is_one_line_naming_the_flag_meant(argv, line, capsys):
    assert _refused(argv, capsys) == line


@pytest.mark.parametrize("argv, line", [
    # argparse called --lr "ambiguous" and took --max-step for --max-steps, --train for eval's --train-dir
    (["--lr", "0.1"], "finetune: error: unrecognized arguments: --lr 0.1 (did you mean --learning-rate, "
                      "--lr-schedule or --lr-multiplier?)"),
    (["--net", "mobilenet_v1_025", "--dataset", "x", "--max-step", "3"],
     "finetune: error: unrecognized arguments: --max-step 3 (did you mean --max-steps?)"),
    (["eval", "--train", "runs/x"], "finetune eval: error: unrecognized arguments: --train runs/x "
                                    "(did you mean --train-dir?)"),
])
def test_an_abbreviated_flag_is_refused_not_guessed(argv, line, capsys):
    assert _refused(argv, capsys) == line


def test_no_parser_matches_flag_prefixes():
    for name in cli._command_names():
        assert cli.build_parser(name).allow_abbrev is False, name


@pytest.mark.parametrize("argv, line", [
    (["eval"], "finetune eval: error: say what to evaluate: --train-dir DIR, or --ckpt PATH --net NAME."),
    (["eval", "--dataset", "/nonexistent/images"],
     "finetune eval: error: say what to evaluate: --train-dir DIR, or --ckpt PATH --net NAME."),
    (["eval", "--watch"], "finetune eval: error: --watch follows a training run: give --train-dir DIR."),
])
def test_eval_asks_first_for_what_to_evaluate(argv, line, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == line + "\n"


def test_errors_name_the_command_only_when_it_was_typed(capsys):
    assert cli.main(["--net", "mobilenet_v1_025", "--dataset", "x", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "finetune: error: --batch-size must be > 0, got 0.\n"
    assert cli.main(["train", "--net", "mobilenet_v1_025", "--dataset", "x", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "finetune train: error: --batch-size must be > 0, got 0.\n"


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _flag_entries(text: str) -> dict[str, str]:
    """Each flag's entry of a --help text, by its first option string, as one line."""
    entries: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        if re.match(r"  -", line):
            flag = line.split()[0].rstrip(",")
            entries[flag] = line.strip()
        elif flag and line.startswith("   "):
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return entries


@pytest.mark.parametrize("command", ["train", *(name for name in cli._command_names() if name != "train")])
def test_help_shows_each_default_once_as_typed(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per flag
    text = _help([] if command == "train" else [command], capsys)
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: )" not in text
    for entry in _flag_entries(text).values():
        assert entry.count("default:") <= 1, entry
        assert "',)" not in entry and "['" not in entry, entry  # no Python reprs of tuples or lists


def test_help_shows_the_defaults_a_user_types(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    train = _flag_entries(_help([], capsys))
    assert train["--trainable"].endswith("(default: 'logits' with --ckpt or a hub:PATH net, 'all' from scratch)")
    assert train["--optimizer"].endswith("(default: momentum)")  # "defaults" in its help is no default
    assert train["--seed"].endswith("(default: 0)")
    assert train["--recipe"].endswith("continues where it stopped")
    evaluate = _flag_entries(_help(["eval"], capsys))
    assert evaluate["--dataset"].endswith("(default: the train dir's dataset)")
    assert evaluate["--validation-fraction"].endswith("(default: 0.1)")


def test_timings_count_runs_in_english():
    from finetune.commands import bench

    assert bench._ms({"median_ms": 2.0, "min_ms": 1.5, "runs": 1}) == "2.0 ms (min 1.5, 1 run)"
    assert bench._ms({"median_ms": 2.0, "min_ms": 1.5, "runs": 3}) == "2.0 ms (min 1.5, 3 runs)"


def test_the_predict_table_fits_the_terminal(monkeypatch):
    from finetune.serve import predict

    synonyms = "tench, Tinca tinca, " * 10  # ImageNet's labels are synonym lists
    results = [{"image": "photos/fish.jpg", "predictions": [
        {"label": f"{rank}: {synonyms}", "class": rank, "probability": 0.5 / rank} for rank in range(1, 4)]},
        {"image": "photos/short.jpg", "predictions": [{"label": "cat", "class": 5, "probability": 0.9}]}]
    monkeypatch.setenv("COLUMNS", "80")
    lines = predict.format_table(results).splitlines()
    assert max(map(len, lines)) <= 80
    assert "1: tench, Tinca tinca" in lines[2] and lines[2].rstrip(" .0123456789").endswith("…")
    assert " cat " in lines[-1]  # a short label stays whole
    monkeypatch.setenv("COLUMNS", "400")
    assert synonyms.strip() in predict.format_table(results)  # a wide terminal shows it all
    assert predict.format_table([]).splitlines()[0].split() == ["image", "#", "label", "probability"]


@pytest.mark.slow
@pytest.mark.skipif(not _TFLITE.is_file(), reason="the real TFLite model is not on this machine")
def test_convert_weights_prints_no_tflite_runtime_notice(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "finetune.cli", "convert-weights", str(_TFLITE), "--from", "tflite",
         "--net", "mobilenet_v1_025", "--output", str(tmp_path / "model.ckpt")],
        capture_output=True, text=True, timeout=600, cwd=_ROOT)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" not in result.stderr and result.stderr == ""
    assert result.stdout.startswith(f"wrote {tmp_path / 'model.ckpt'} (137 variables of mobilenet_v1_025")
