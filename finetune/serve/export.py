"""Export a checkpoint as a frozen inference graph (.pb) and, optionally, a SavedModel; verify both.

The graph is the serving contract of `finetune.serve.graph` (an image of any size, or its bytes, in;
logits, probabilities, classes out; evaluation's preprocessing inside). Beside the .pb go
`labels.txt` (one class name per line, in label order: `finetune.runs.files`) and a JSON (model.json
for model.pb) of the input/output names, shapes and preprocessing, the verification and the tolerance
it used, and which labels file is the model's: the contract, for a client, and the one way
`finetune.serve.served.ServedModel` finds the class names. A SavedModel gets the same graph with a
`serving_default` signature, and its labels.txt and JSON in `assets.extra/`. Every file is written whole.

Export knows its own files by their model.json only: any .pb, labels.txt or JSON of the names it would
write that is already in the output folder stops it (one line, before any work) unless `overwrite`, and
it tells an earlier export (an export's model.json is there) from files it did not write; it never
reads a labels.txt it finds. A SavedModel dir is replaced only when it holds an earlier export and
`overwrite`.

Every export is verified (`finetune.serve.verify`): the written graphs are loaded as a client loads them
and compared with evaluation's pipeline on raw images of several sizes; ValueError above `tolerance`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from finetune.runs.files import LABELS_FILE, write_atomically, write_json, write_labels
from finetune.runs.trained_model import TrainedModel
from finetune.serve import verify
from finetune.serve.graph import (
    BATCH_NORM_OPS,
    INPUT,
    SIGNATURE,
    check_input_type,
    frozen_serving_graph,
    op_counts,
    write_saved_model,
)
from finetune.serve.served import EXPORTED_BY, INFO_SUFFIX, SAVED_MODEL_EXTRA, info_path, is_export_info
from finetune.serve.verify import TOLERANCE


@dataclass
class ExportResult:
    """What export wrote and how it verified."""

    graph: str
    labels: str
    info: str
    saved_model: str | None
    size_bytes: int
    nodes: int
    batch_norms_folded: int
    batch_norms_left: int
    max_difference: dict[str, float]
    sample_sizes: list[str]
    tolerance: float = TOLERANCE
    saved_model_max_difference: dict[str, float] | None = None


def export(
    model: TrainedModel,
    output: str | Path,
    *,
    input_type: str = "float",
    saved_model_dir: str | Path | None = None,
    tolerance: float = TOLERANCE,
    overwrite: bool = False,
) -> ExportResult:
    """Freeze `model` into `output` (.pb) with labels.txt and OUTPUT.json beside it; optionally a SavedModel.

    Verifies both against evaluation's pipeline on raw sample images of several sizes; ValueError above
    tolerance. ValueError before any work if `output`'s folder holds a labels.txt, OUTPUT.json or
    `output` itself, or `saved_model_dir` is not empty, unless `overwrite` (and, for the SavedModel
    dir, it holds an earlier export).
    """
    check_input_type(input_type)
    output = Path(output)
    saved_model_dir = Path(saved_model_dir) if saved_model_dir else None
    check_destination(output, saved_model_dir, overwrite)
    samples = verify.samples(model, input_type)
    graph_def, batch_norms = frozen_serving_graph(model, input_type)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, graph_def.SerializeToString())
    left = op_counts(graph_def, BATCH_NORM_OPS)
    result = ExportResult(
        graph=str(output),
        labels=str(output.parent / LABELS_FILE),
        info=str(info_path(output)),
        saved_model=str(saved_model_dir) if saved_model_dir else None,
        size_bytes=output.stat().st_size,
        nodes=len(graph_def.node),
        batch_norms_folded=batch_norms - left,
        batch_norms_left=left,
        max_difference=verify.verify(output, samples, tolerance),
        sample_sizes=samples.sizes,
        tolerance=tolerance,
    )
    if saved_model_dir:
        if saved_model_dir.exists():
            shutil.rmtree(saved_model_dir)  # an earlier export's, as check_destination made sure
        write_saved_model(graph_def, saved_model_dir)
        result.saved_model_max_difference = verify.verify(saved_model_dir, samples, tolerance)
    info = model_info(model, input_type, result)
    write_sidecars(output.parent, info_path(output), model, info)
    if saved_model_dir:
        write_sidecars(saved_model_dir / SAVED_MODEL_EXTRA, info_path(saved_model_dir), model, info)
    return result


def check_destination(output: Path, saved_model_dir: Path | None, overwrite: bool) -> None:
    """Refuse, in one line, to replace what export did not write, and an earlier export unless `overwrite`.

    Export writes OUTPUT, labels.txt and OUTPUT.json into OUTPUT's folder; any of the three already there
    stops the export unless `overwrite`, and the error says whether an export's model.json is there (an
    earlier export) or not (files export did not write). A non-empty SavedModel dir is replaced only when
    it holds an earlier export (its assets.extra/model.json) and `overwrite`.
    """
    if output.is_dir():
        raise ValueError(f"--output {output} is a directory: give the .pb file to write, e.g. {output / 'model.pb'}.")
    present = [path for path in (output, output.parent / LABELS_FILE, info_path(output)) if path.exists()]
    if present and not overwrite:
        names = ", ".join(path.name for path in present)
        earlier = [path.name for path in sorted(output.parent.glob(f"*{INFO_SUFFIX}")) if is_export_info(path)]
        if earlier:
            raise ValueError(f"{output.parent} holds an earlier export ({earlier[0]}); this one would replace {names}: "
                             "pass --overwrite to replace it, or give --output in another folder.")
        raise ValueError(f"{output.parent} already holds {names}, which finetune export did not write: give --output "
                         "in another folder, or pass --overwrite to replace it.")
    if saved_model_dir is None or not saved_model_dir.exists():
        return
    if not saved_model_dir.is_dir():
        raise ValueError(f"SavedModel directory {saved_model_dir} is a file: give a new directory.")
    if not any(saved_model_dir.iterdir()):
        return
    if not is_export_info(info_path(saved_model_dir)):
        raise ValueError(f"SavedModel directory {saved_model_dir} is not empty and holds no earlier export: "
                         "remove it or choose another.")
    if not overwrite:
        raise ValueError(f"SavedModel directory {saved_model_dir} holds an earlier export: pass --overwrite to "
                         "replace it, or choose another.")


def model_info(model: TrainedModel, input_type: str, result: ExportResult) -> dict:
    """The JSON written beside the graph: the serving contract (input/output names, dtypes, shapes,
    preprocessing, the labels file) and provenance, with the verification and the tolerance it used."""
    size = model.image_size
    if input_type == "float":
        input_info = {"dtype": "float32", "shape": [None, None, None, 3],
                      "values": "decoded RGB images at their own size, not resized, pixel values in [0, 255]; "
                                "one size per batch (send images of other sizes in other runs, e.g. one by one)"}
    else:
        input_info = {"dtype": "string", "shape": [None],
                      "values": "encoded image bytes, each of any size (JPEG; PNG/GIF/BMP too)"}
    classes = model.num_classes
    return {
        "exported_by": EXPORTED_BY,
        "net": model.net,
        "checkpoint": model.checkpoint,
        "global_step": model.global_step,
        "num_classes": classes,
        "image_size": size,
        "labels": LABELS_FILE,
        "input": {"name": f"{INPUT}:0", "type": input_type, **input_info},
        "outputs": {
            "logits": {"name": "logits:0", "dtype": "float32", "shape": [None, classes]},
            "probabilities": {"name": "probabilities:0", "dtype": "float32", "shape": [None, classes]},
            "classes": {"name": "classes:0", "dtype": "int64", "shape": [None]},
        },
        "preprocessing": preprocessing_info(model),
        "signature": SIGNATURE,
        "verification": {
            "against": "finetune eval's pipeline (decode, evaluation preprocessing, checkpoint) on raw images",
            "sample_sizes": result.sample_sizes,
            "tolerance": result.tolerance,
            "max_difference": result.max_difference,
            "saved_model_max_difference": result.saved_model_max_difference,
        },
        "batch_norms_folded": result.batch_norms_folded,
        "batch_norms_left": result.batch_norms_left,
    }


def preprocessing_info(model: TrainedModel) -> dict:
    """model.json's preprocessing: evaluation's, inside the graph."""
    from finetune.data.preprocessing import describe_evaluation

    size = model.image_size
    return {
        "style": model.preprocessing,
        "in_graph": True,
        "mode": "evaluation (finetune.data.preprocessing.preprocess_image, is_training=False), as finetune eval",
        "steps": describe_evaluation(model.preprocessing, size, size),
        "decoding": "as finetune eval decodes (tf.io.decode_image, channels=3, a GIF's first frame, "
                    "EXIF orientation not applied); the jpeg input decodes inside the graph",
    }


def write_sidecars(directory: Path, info_file: Path, model: TrainedModel, info: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_labels(directory / LABELS_FILE, model.class_names)
    write_json(info_file, info)
