"""The built-in demo's plan: pretrain on one set of drawn shapes, transfer to a related set.

Command: `finetune demo` (about 65 s on 2 CPU cores the first time, about 30 s once the pretrained
source checkpoint is cached in $FINETUNE_HOME/demo).

The two tasks share primitives, so features learned on the source help on the target: filled
circle / outlined frame (source) against outlined ring / filled square (target), plus against x,
horizontal and diagonal stripes against vertical ones, dots against checker.

Result measured with these values (mobilenet_v1_025 at 64 px, 10 training images per target class):
on the target task's validation images the fine-tuned net (classifier first, then all layers at a
lower rate) reaches 93-95% against 73-82% for the same net trained from scratch for the same 120
steps; the source task reaches 100%. TensorFlow's parallel input pipeline is not bit-for-bit
repeatable, so the numbers move from run to run (from scratch most: it also reached 60-80% in
shorter trials); the gap stays.
"""

from finetune.recipe import Recipe, Stage

SOURCE_CLASSES = ("circle", "frame", "plus", "stripes_h", "stripes_d", "dots")
TARGET_CLASSES = ("ring", "square", "x", "stripes_v", "checker", "triangle")


def demo() -> Recipe:
    """mobilenet_v1_025 at 64 px: 6 source shapes with 120 images each, 6 related target shapes with 10 each."""
    pretrain_steps, logits_steps, all_steps = 800, 60, 60
    return Recipe(
        name="demo",
        description="transfer learning on procedurally drawn shapes",
        base={"net": "mobilenet_v1_025", "image_size": 64, "batch_size": 32, "seed": 0, "optimizer": "momentum",
              "save_interval_secs": 3600, "batch_norm_decay": 0.9, "crop_min_area": 0.5,
              "deterministic": True},
        stages=(
            Stage("pretrain", init=None, dataset="source",
                  overrides={"trainable": "all", "learning_rate": 0.05, "max_steps": pretrain_steps}),
            Stage("logits", init="pretrain",
                  overrides={"trainable": "logits", "learning_rate": 0.2, "max_steps": logits_steps}),
            Stage("all", init="logits", overrides={"trainable": "all", "learning_rate": 0.01, "max_steps": all_steps}),
            Stage("scratch", init=None,
                  overrides={"trainable": "all", "learning_rate": 0.05, "max_steps": logits_steps + all_steps}),
        ),
        extra={
            "source_classes": SOURCE_CLASSES,
            "target_classes": TARGET_CLASSES,
            "source_train_per_class": 120,
            "target_train_per_class": 10,
            "validation_per_class": 30,
            "drawn_size": 72,  # pixels of the written images; the net reads image_size crops of them
            "cached_stages": ("pretrain",),
            "compare": ("all", "scratch"),  # fine-tuned vs from scratch, same target steps
        },
    )

