"""TF-Slim's flowers fine-tuning of mobilenet_v1 (1.0, 224 px), classifier first, then all layers.

The values of research/slim/scripts/finetune_mobilenet_v1_on_flowers.sh (its default, 1.0 at 224):
the mobilenet_v1_1.0_224 ImageNet checkpoint without MobilenetV1/Logits, RMSProp at a fixed learning
rate, batch 32, weight decay 4e-5; 1000 steps at 0.01 training the classifier, then 500 steps at
0.0001 training every layer; each stage evaluated on the validation split at its end. The script's
other widths and sizes are flags: `--net mobilenet_v1_050 --image-size 160 --ckpt ...`.

    finetune download mobilenet_v1
    finetune --recipe flowers_mobilenet_v1 --dataset FLOWERS --train-dir runs/flowers_mobilenet

Not run here (it needs the checkpoint and the flowers dataset downloaded); tested with --dry-run and
on a small drawn dataset with the steps overridden (tests/test_recipes.py).
"""

from finetune.recipe import Data, Model, Recipe, Restore, Training
from recipes import pool

RECIPE = Recipe(
    description="TF-Slim's flowers script for mobilenet_v1 1.0/224: logits 1000 steps at 0.01, all layers 500 at 1e-4",
    data=Data(dataset=None),  # --dataset
    model=Model(net="mobilenet_v1", image_size=224),
    restore=Restore(ckpt="mobilenet_v1", exclude_scopes="MobilenetV1/Logits"),
    training=(pool.SLIM_RMSPROP, pool.FIXED),
    stages=pool.classifier_then_all(classifier=Training(max_steps=1000, learning_rate=0.01),
                                    all_layers=Training(max_steps=500, learning_rate=0.0001)),
)
