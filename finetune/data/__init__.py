"""Data: datasets on disk and the tf.data pipeline that reads them.

Scanning image folders and TFRecord folders, the input pipeline and its preprocessing, the report of
images that do not decode, the TFRecord writer (`finetune convert`) and the drawn demo images.
Imports `nets` (for TensorFlow through `nets.compat`) and nothing else of the project.
"""
