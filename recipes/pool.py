"""Values recipes pick from: optimizer settings, schedules and stage patterns that are long or come from
fixed options. Values only (a pattern is a function of the few numbers that vary), no toolkit logic."""

from finetune.recipe import Stage, Training

# What trains (RunConfig.trainable): the net's classifier scopes, or every layer.
CLASSIFIER = Training(trainable="logits")
ALL_LAYERS = Training(trainable="all")

# TF-Slim's train_image_classifier.py defaults for its RMSProp optimizer (decay 0.9, momentum 0.9, epsilon 1.0),
# as its flowers fine-tuning scripts run it: batch 32, weight decay 4e-5, a checkpoint every 60 s.
SLIM_RMSPROP = Training(optimizer="rmsprop", rmsprop_decay=0.9, rmsprop_momentum=0.9, opt_epsilon=1.0,
                        batch_size=32, weight_decay=0.00004, save_interval_secs=60)

# Learning-rate schedules (RunConfig.lr_schedule and its parameters).
FIXED = Training(lr_schedule="fixed")
# TF-Slim's default (--learning_rate_decay_type exponential): x0.94 every 2 epochs, staircase.
SLIM_EXPONENTIAL = Training(lr_schedule="exponential", decay_epochs=2.0, decay_factor=0.94)
COSINE = Training(lr_schedule="cosine", end_learning_rate=0.0)


def classifier_then_all(classifier: Training, all_layers: Training, *, start: str = "ckpt",
                        keep_classifier: str | None = None) -> tuple[Stage, Stage]:
    """TF-Slim's fine-tuning pattern: stage 'logits' trains the new classifier on the frozen pretrained net (from
    `start`), then stage 'all' trains every layer from there, usually at a lower rate; `classifier` and
    `all_layers` hold each stage's own values (steps or epochs, learning rate, ...)."""
    return (Stage("logits", start=start, training=(CLASSIFIER, classifier), keep=keep_classifier),
            Stage("all", start="logits", training=(ALL_LAYERS, all_layers)))
