"""The names a command-line flag chooses from, free of TensorFlow, so that `--help` lists them at once.

Each tuple is the set of valid values of one flag, in the order `--help` shows them. The registries
that give the names their meaning (TensorFlow-side, imported on first use) hold exactly these keys,
which the tests check:

    OPTIMIZERS          finetune.train.optim.OPTIMIZERS      --optimizer (and OPTIMIZER_PARAMS, what each reads)
    SCHEDULES           finetune.train.optim.SCHEDULES       --lr-schedule
    PRECISIONS          finetune.train.precision.PRECISIONS  --precision
    PREPROCESSING       finetune.data.preprocessing.STYLES   a net's preprocessing style
    WEIGHT_FORMATS      finetune.weights.reader              convert-weights --from

and the others are checked where they are read (finetune.train.feature_cache.decide, the pipeline,
checkpoints' restore planner, nets.hub). Each optimizer's parameters are named here too, with their
defaults (TF-Slim's train_image_classifier flags), so that a config resolves them without TensorFlow:
`optimizer_params("rmsprop", opt_epsilon=0.1)`. Imports nothing but checkpoints.mapping (no TensorFlow).
"""

from __future__ import annotations

from checkpoints.mapping import BACKGROUND_OPTIONS

OPTIMIZER_PARAMS: dict[str, tuple[str, ...]] = {  # the parameters each optimizer reads
    "sgd": (),
    "momentum": ("momentum",),
    "rmsprop": ("rmsprop_decay", "rmsprop_momentum", "opt_epsilon"),
    "adam": ("adam_beta1", "adam_beta2", "opt_epsilon"),
    "adamw": ("adam_beta1", "adam_beta2", "opt_epsilon", "adamw_weight_decay"),
}
OPTIMIZERS = tuple(OPTIMIZER_PARAMS)
# TF-Slim's train_image_classifier flag defaults, plus adamw's decoupled decay (PyTorch's default).
OPTIMIZER_DEFAULTS: dict[str, float] = {
    "momentum": 0.9,
    "rmsprop_decay": 0.9,
    "rmsprop_momentum": 0.9,
    "opt_epsilon": 1.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adamw_weight_decay": 0.01,
}
SCHEDULES = ("fixed", "exponential", "polynomial", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
CACHE_FEATURES = ("auto", "on", "off")  # --cache-features
AUGMENT = ("default", "none")  # --augment
BACKGROUND_CLASS = tuple(option for option in BACKGROUND_OPTIONS if option)  # --background-class (unset: None)
INPUT_RANGES = ("0,1", "-1,1")  # --input-range of a hub:PATH net
PREPROCESSING = ("inception", "vgg")
SPLITS = ("train", "validation")
WEIGHT_FORMATS = ("tflite", "keras")


def optimizer_params(name: str, **params: float | None) -> dict[str, float]:
    """The parameters optimizer `name` will use: the given ones (None = default) over TF-Slim's defaults.

    Parameters the optimizer does not read are dropped, so a training loop may pass all of its
    flags; a name that is no optimizer parameter at all is a ValueError (a typo, not a flag).
    """
    if name not in OPTIMIZER_PARAMS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    unknown = sorted(set(params) - set(OPTIMIZER_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown optimizer parameter(s) {', '.join(unknown)}; known: {', '.join(OPTIMIZER_DEFAULTS)}.")
    return {key: OPTIMIZER_DEFAULTS[key] if params.get(key) is None else params[key] for key in OPTIMIZER_PARAMS[name]}
