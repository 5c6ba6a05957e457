"""TF-Slim's flowers fine-tuning of inception_resnet_v2, classifier first, then all layers.

The values of research/slim/scripts/finetune_inception_resnet_v2_on_flowers.sh: the 2016_08_30
ImageNet checkpoint without its classifier (Logits, AuxLogits), RMSProp at a fixed learning rate,
batch 32, weight decay 4e-5; 1000 steps at 0.01 training Logits and AuxLogits, then 500 steps at
0.0001 training every layer; each stage evaluated on the validation split at its end.

    finetune download inception_resnet_v2
    finetune --recipe flowers_inception_resnet_v2 --dataset FLOWERS --train-dir runs/flowers_irv2

Not run here (it needs the checkpoint and the flowers dataset downloaded); tested with --dry-run and
on a small drawn dataset with the steps overridden (tests/test_recipes.py).
"""

from finetune.recipe import Data, Model, Recipe, Restore, Training
from recipes import pool

RECIPE = Recipe(
    description="TF-Slim's flowers script for inception_resnet_v2: logits 1000 steps at 0.01, all layers 500 at 1e-4",
    data=Data(dataset=None),  # --dataset
    model=Model(net="inception_resnet_v2"),
    restore=Restore(ckpt="inception_resnet_v2",
                    exclude_scopes=("InceptionResnetV2/Logits", "InceptionResnetV2/AuxLogits")),
    training=(pool.SLIM_RMSPROP, pool.FIXED),
    stages=pool.classifier_then_all(classifier=Training(max_steps=1000, learning_rate=0.01),
                                    all_layers=Training(max_steps=500, learning_rate=0.0001)),
)
