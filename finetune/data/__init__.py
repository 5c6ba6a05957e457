"""Data: datasets on disk and the tf.data pipeline that reads them, one job a module.

`scan` checks a dataset directory (image folder or TF-Slim TFRecords) into a `DatasetInfo`; `records`
defines `DatasetInfo`, says what its records are and decodes their images; `pipeline` reads a split as batches (and keeps
the names of the images it skips); `forensics` says why each skipped image does not decode;
`preprocessing` prepares images for a net; `tfrecords` writes an image folder as TFRecords
(`finetune convert`); `synthetic` draws demo images. Import the modules themselves: this package
re-exports nothing. Imports `nets` (TensorFlow through `nets.compat`), `finetune.choices` and nothing
else of the project.
"""
