"""TF-Slim's flowers fine-tuning of resnet_v1_50, classifier first, then all layers.

The values of research/slim/scripts/finetune_resnet_v1_50_on_flowers.sh: the 2016_08_28 ImageNet
checkpoint (1000 classes) without resnet_v1_50/logits, RMSProp, batch 32, weight decay 4e-5, and,
unlike the inception scripts, TF-Slim's default exponential schedule (x0.94 every 2 epochs); 3000
steps at 0.01 training the classifier, then 1000 steps at 0.001 training every layer; each stage
evaluated on the validation split at its end.

    finetune download resnet_v1_50
    finetune --recipe flowers_resnet_v1_50 --dataset FLOWERS --train-dir runs/flowers_resnet

Not run here (it needs the checkpoint and the flowers dataset downloaded); tested with --dry-run and
on a small drawn dataset with the steps overridden (tests/test_recipes.py).
"""

from finetune.recipe import Data, Model, Recipe, Restore, Training
from recipes import pool

RECIPE = Recipe(
    description="TF-Slim's flowers script for resnet_v1_50: logits 3000 steps at 0.01, all layers 1000 at 0.001",
    data=Data(dataset=None),  # --dataset
    model=Model(net="resnet_v1_50"),
    restore=Restore(ckpt="resnet_v1_50", exclude_scopes="resnet_v1_50/logits"),
    training=(pool.SLIM_RMSPROP, pool.SLIM_EXPONENTIAL),
    stages=pool.classifier_then_all(classifier=Training(max_steps=3000, learning_rate=0.01),
                                    all_layers=Training(max_steps=1000, learning_rate=0.001)),
)
