"""`finetune nets`: the zoo as a table, one row per registered net."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checkpoints import registry
from finetune import cli
from finetune.commands import nets as nets_command
from nets import nets_factory


def _rows(output: str) -> dict[str, list[str]]:
    """Table rows by net name (the header and rule lines dropped, up to the blank line before the notes)."""
    rows = {}
    for line in output.splitlines()[2:]:
        if not line.strip():  # the note on hub:PATH after the table
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def test_lists_every_registered_net_with_its_parameter_count(capsys):
    assert cli.main(["nets"]) == 0
    rows = _rows(capsys.readouterr().out)
    specs = nets_factory.specs()
    assert set(rows) == set(specs)
    for name, spec in specs.items():
        assert rows[name][1:4] == [str(spec.image_size), f"{spec.num_parameters / 1e6:.2f}M", str(spec.num_classes)]
        assert rows[name][4] == spec.preprocessing
        assert spec.classifier_scopes[0] in rows[name][9]


@pytest.mark.parametrize(
    "name, checkpoint, top1, top5, source",
    [
        ("inception_v3", "inception_v3_2016_08_28.tar.gz", "78.0", "93.9", "research/slim/README.md"),
        ("mobilenet_v1_025", "mobilenet_v1_0.25_224.tgz", "49.8", "74.2", "research/slim/nets/mobilenet_v1.md"),
        ("mobilenet_v3_large", "v3-large_224_1.0_float.tgz", "75.2", "-", "research/slim/nets/mobilenet/README.md"),
        ("mobilenet_edgetpu_075", "mobilenet_edgetpu_224_0.75.tgz", "73.5", "-", "research/slim/nets/mobilenet/README.md"),
        # TF-Slim published no weights for these.
        ("alexnet_v2", "none", "-", "-", "-"),
        ("overfeat", "none", "-", "-", "-"),
        ("vgg_a", "none", "-", "-", "-"),
        ("resnet_v2_200", "none", "-", "-", "-"),
    ],
)
def test_published_checkpoint_and_accuracy_with_their_source(capsys, name, checkpoint, top1, top5, source):
    assert cli.main(["nets", name]) == 0
    out = capsys.readouterr().out
    assert _rows(out)[name][5:9] == [checkpoint, top1, top5, source]
    assert "checkpoint none: TF-Slim published no weights for the net." in out


def test_every_registered_checkpoint_shows_against_its_net(capsys):
    assert cli.main(["nets"]) == 0
    rows = _rows(capsys.readouterr().out)
    with_checkpoint = {name for name, cells in rows.items() if cells[5] != "none"}
    assert with_checkpoint == set(registry.REGISTRY)
    for name in with_checkpoint:
        assert rows[name][5] == registry.REGISTRY[name].archive


@pytest.mark.parametrize(
    "name, parameters",
    # The published VGG models' well-known sizes (weights and biases, 1000 classes).
    [("vgg_a", "132.86M"), ("vgg_16", "138.36M"), ("vgg_19", "143.67M")],
)
def test_parameter_counts_match_the_published_models(capsys, name, parameters):
    assert cli.main(["nets", name]) == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == [name] and rows[name][2] == parameters


def test_unknown_net_is_a_one_line_error_naming_close_matches(capsys):
    assert cli.main(["nets", "vgg16"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().count("\n") == 0
    assert captured.err.startswith("finetune nets: error: Unknown net 'vgg16'.") and "vgg_16" in captured.err
    assert "`finetune nets`" in captured.err


def test_lists_the_zoo_without_importing_tensorflow_and_as_the_specs_say():
    code = ("import sys; from finetune import cli; code = cli.main(['nets']); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    expected = nets_command.table(list(nets_factory.specs().values()))
    assert done.stdout.startswith(expected + "\n\ntop-1 / top-5: published single-crop ImageNet accuracy")
    assert done.stdout.rstrip().endswith(nets_command.HUB_NOTE)
