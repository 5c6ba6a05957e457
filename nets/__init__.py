"""The model zoo: TF-Slim arg_scope networks whose variables match the published checkpoints."""
