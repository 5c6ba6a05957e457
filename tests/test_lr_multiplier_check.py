"""--lr-multiplier: `--dry-run` refuses exactly the scopes the run refuses, with the run's own one-line error
(finetune.config.check_multiplier_scopes, which both call)."""

from __future__ import annotations

import functools

import pytest

from checkpoints import scopes
from finetune import cli, config
from finetune.config import RunConfig
from finetune.data import synthetic
from nets import nets_factory

RECIPE = '''from finetune.recipe.types import Model, Recipe, Stage, Training

RECIPE = Recipe(
    description="a multiplier the run refuses",
    model=Model(net="mobilenet_v1_025"),
    stages=(Stage("only", start="scratch", training=Training(max_steps=1, trainable="logits",
                                                           allow_random_trunk=True, lr_multiplier={multipliers})),),
)
'''
FROZEN = (("Conv2d_13_pointwise", 2.0),)  # a frozen scope: nothing trained under it
SHADOWED = (("Logits", 10.0), ("Logits/Conv2d_1c_1x1", 5.0))  # 'Logits' takes no variable: the longer scope does


@pytest.mark.parametrize("multipliers, refused", [(FROZEN, "Conv2d_13_pointwise"), (SHADOWED, "Logits"),
                                                  ((("Logits", 10.0),), None)])
def test_the_scopes_the_run_refuses(multipliers, refused):
    from finetune.train.graph import trainable_scopes

    c = RunConfig(net="mobilenet_v1_025", dataset="data", ckpt="ckpt", lr_multiplier=multipliers)
    spec = nets_factory.get_spec(c.net)
    trained = [n for n in spec.published_variables() if scopes.matching_scope(n, trainable_scopes(spec, c.trainable),
                                                                              spec.scope)]
    check = functools.partial(config.check_multiplier_scopes, trained, [s for s, _ in multipliers], spec.scope)
    if refused is None:
        check()
        return
    with pytest.raises(ValueError) as error:
        check()
    assert str(error.value) == (f"--lr-multiplier scope(s) {refused} match no trained variable: check the scope names "
                                "(`finetune inspect` lists them) and --trainable.")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return str(synthetic.write_shapes_dataset(tmp_path_factory.mktemp("shapes"), ["circle", "square"],
                                              train_per_class=2, validation_per_class=1, image_size=36, seed=0))


@pytest.mark.parametrize("multipliers, refused", [(FROZEN, "Conv2d_13_pointwise"), (SHADOWED, "Logits")])
def test_dry_run_refuses_in_one_line_what_the_run_refuses(tmp_path, shapes, capsys, multipliers, refused):
    words = f"--lr-multiplier scope(s) {refused} match no trained variable"
    flags = ["--net", "mobilenet_v1_025", "--dataset", shapes, "--batch-size", "2", "--image-size", "32",
             "--max-steps", "1", "--trainable", "logits", "--allow-random-trunk", "--skip-eval", "--train-dir",
             str(tmp_path / "run")]
    for scope, factor in multipliers:
        flags += ["--lr-multiplier", f"{scope}={factor}"]
    assert cli.main(flags) == 2  # the run builds its graph, then refuses
    run_error = capsys.readouterr().err.strip()
    assert len(run_error.splitlines()) == 1 and words in run_error, run_error

    recipe = tmp_path / "recipe.py"
    recipe.write_text(RECIPE.format(multipliers=multipliers))
    assert cli.main(["--recipe", str(recipe), "--dataset", shapes, "--train-dir", str(tmp_path / "plan"),
                     "--dry-run"]) == 2
    dry_error = capsys.readouterr().err.strip()
    assert len(dry_error.splitlines()) == 1 and f"error: {recipe}:" in dry_error and words in dry_error, dry_error
