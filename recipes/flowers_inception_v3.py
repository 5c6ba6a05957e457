"""TF-Slim's fine-tuning walkthrough: inception_v3 on the flowers dataset, classifier first, then all layers.

The values of TF-Slim's README ("Fine-tuning a model from an existing checkpoint") and
research/slim/scripts/finetune_inception_v3_on_flowers.sh: the ImageNet checkpoint without its
classifier (Logits, AuxLogits), RMSProp at a fixed learning rate, batch 32, weight decay 4e-5; 1000
steps at 0.01 training Logits and AuxLogits, then 500 steps at 0.0001 training every layer from
there; each stage evaluated on the validation split at its end.

    finetune download inception_v3
    finetune --recipe flowers_inception_v3 --dataset FLOWERS --train-dir runs/flowers_v3

FLOWERS: TF-Slim's converted flowers TFRecords (download_and_convert_data.py --dataset_name=flowers:
3320 train / 350 validation images) or the flower_photos folder (`--validation-fraction` holds out 10%).

Not run here (it needs the checkpoint and the dataset downloaded); tested with --dry-run and on a
small drawn dataset with the steps overridden (tests/test_recipes.py).
"""

from finetune.recipe import Data, Model, Recipe, Restore, Training
from recipes import pool

RECIPE = Recipe(
    description="TF-Slim's flowers walkthrough: inception_v3, logits 1000 steps at 0.01, then all layers 500 at 1e-4",
    data=Data(dataset=None),  # --dataset
    model=Model(net="inception_v3"),
    restore=Restore(ckpt="inception_v3", exclude_scopes=("InceptionV3/Logits", "InceptionV3/AuxLogits")),
    training=(pool.SLIM_RMSPROP, pool.FIXED),
    stages=pool.classifier_then_all(classifier=Training(max_steps=1000, learning_rate=0.01),
                                    all_layers=Training(max_steps=500, learning_rate=0.0001)),
)
