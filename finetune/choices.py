"""The names a command-line flag chooses from, free of TensorFlow, so that `--help` lists them at once.

Each tuple is the set of valid values of one flag, in the order `--help` shows them. The registries
that give the names their meaning (TensorFlow-side, imported on first use) hold exactly these keys,
which the tests check:

    OPTIMIZERS          finetune.train.optim.OPTIMIZERS      --optimizer
    SCHEDULES           finetune.train.optim.SCHEDULES       --lr-schedule
    PRECISIONS          finetune.train.precision.PRECISIONS  --precision
    PREPROCESSING       finetune.data.preprocessing.STYLES   a net's preprocessing style
    WEIGHT_FORMATS      finetune.weights.reader              convert-weights --from

and the others are checked where they are read (finetune.train.feature_cache.decide, the pipeline,
checkpoints' restore planner, nets.hub). Imports nothing but checkpoints.mapping (no TensorFlow).
"""

from __future__ import annotations

from checkpoints.mapping import BACKGROUND_OPTIONS

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adamw")
SCHEDULES = ("fixed", "exponential", "polynomial", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
CACHE_FEATURES = ("auto", "on", "off")  # --cache-features
AUGMENT = ("default", "none")  # --augment
BACKGROUND_CLASS = tuple(option for option in BACKGROUND_OPTIONS if option)  # --background-class (unset: None)
INPUT_RANGES = ("0,1", "-1,1")  # --input-range of a hub:PATH net
PREPROCESSING = ("inception", "vgg")
SPLITS = ("train", "validation")
WEIGHT_FORMATS = ("tflite", "keras")
