"""finetune: fine-tune pretrained TF-Slim image networks, then evaluate and export them."""

__version__ = "0.1.0"
