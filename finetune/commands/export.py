"""`finetune export`: a frozen inference graph (.pb) and optionally a SavedModel, verified against the checkpoint;
or a TensorFlow Lite model (--tflite), verified against the float graph."""

from __future__ import annotations

import argparse

HELP = (
    "Export a checkpoint for inference: a frozen .pb (variables as constants, BatchNorm folded, evaluation "
    "preprocessing inside; input `input`: decoded images of any size or their encoded bytes; outputs `logits`, "
    "`probabilities`, `classes`) with labels.txt and a JSON beside it, optionally a SavedModel; then verify both "
    "against finetune eval's pipeline on raw images of several sizes. --hub DIR writes a reusable TF Hub "
    "SavedModel instead of (or beside) the frozen graph; --tflite float32|float16|dynamic|int8 a TensorFlow Lite model "
    "instead, checked by its top-1 agreement with the float graph."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("what to export (a train dir, or a checkpoint and its net)")
    source.add_argument("--train-dir", help="a training run's directory: its latest checkpoint and run_config.json")
    source.add_argument("--ckpt", help="a checkpoint (prefix, file, directory or registry name); "
                        "with --train-dir, this one of it")
    source.add_argument("--net", help="the checkpoint's network (with --ckpt outside a train dir)")
    source.add_argument("--num-classes", type=int, help="the checkpoint's class count (default: --labels', else the "
                        "net's published count)")
    source.add_argument("--labels", help="class names, one per line in label order (with --ckpt)")
    source.add_argument("--image-size", type=int, help="input size in pixels (default: the run's, else the net's)")
    source.add_argument("--moving-average", action="store_true",
                        help="export the checkpoint's ExponentialMovingAverage shadow weights (with --ckpt)")
    parser.add_argument("--output", help="the frozen graph to write, e.g. out/model.pb (labels.txt and model.json go "
                        "beside it)")
    parser.add_argument("--hub", metavar="DIR", help="write a reusable TF Hub SavedModel to this new dir (feature-vector "
                        "and classification signatures; hub.load / hub.KerasLayer(trainable=True) fine-tune it again)")
    parser.add_argument("--input-type", default="float", choices=("float", "jpeg"),
                        help="'float': [None, None, None, 3] decoded images of any size (one size per batch), pixel "
                        "values 0-255, not resized; 'jpeg': [None] encoded image bytes")
    parser.add_argument("--saved-model", help="also write a SavedModel (serving_default signature) to this new dir")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the .pb, labels.txt and JSON already in --output's folder (an earlier "
                        "export's, or files export did not write) and an earlier export's --saved-model dir")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="fail when the exported outputs differ from the checkpoint graph's by more")
    lite = parser.add_argument_group("TensorFlow Lite (--tflite: --output is the .tflite to write)")
    lite.add_argument("--tflite", choices=("float32", "float16", "dynamic", "int8"),
                      help="write a .tflite of the serving graph, input fixed at the image size: float32; float16 or "
                      "dynamic (int8) weights; int8: full-integer, calibrated on the run's training images")
    lite.add_argument("--tflite-input", default="uint8", choices=("uint8", "int8", "float32"),
                      help="the int8 model's input type (pixels 0-255, quantized by the input's scale and zero point)")
    lite.add_argument("--calibration", metavar="DIR",
                      help="a folder of images to calibrate int8 on (and verify on, without a validation split); "
                      "required with --ckpt outside a train dir")
    lite.add_argument("--min-agreement", type=float, metavar="FRACTION",
                      help="refuse the .tflite when its top-1 agrees with the float graph's on fewer of the "
                      "verification images (default: 1.0 float32, 0.99 float16, 0.98 dynamic, 0.95 int8)")


def _model(args: argparse.Namespace):
    from finetune.runs.files import read_labels
    from finetune.runs.trained_model import TrainedModel

    if args.train_dir:
        return TrainedModel.from_train_dir(args.train_dir, checkpoint=args.ckpt, image_size=args.image_size)
    if not (args.ckpt and args.net):
        raise ValueError("say what to export: --train-dir DIR, or --ckpt PATH --net NAME [--num-classes N].")
    names = read_labels(args.labels) if args.labels else None
    return TrainedModel.from_checkpoint(args.ckpt, args.net, args.num_classes, image_size=args.image_size,
                                        class_names=names, use_moving_average=args.moving_average)


def run(args: argparse.Namespace) -> int:
    from finetune.serve import export

    if args.tflite:
        return _run_tflite(args)
    if not (args.output or args.hub):
        raise ValueError("say what to write: --output model.pb (frozen graph) and/or --hub DIR (TF Hub SavedModel).")
    if args.hub:
        from finetune.serve import hub_export

        written = hub_export.export_hub(_model(args), args.hub)
        print(f"wrote TF Hub SavedModel {args.hub} ({written['net']}: images [None, {written['image_size']}, "
              f"{written['image_size']}, 3] in [0, 1] -> {written['feature_dim']} features, "
              f"{written['num_classes']} classes)")
        if not args.output:
            return 0
    result = export.export(_model(args), args.output, input_type=args.input_type,
                           saved_model_dir=args.saved_model, tolerance=args.tolerance, overwrite=args.overwrite)
    difference = result.max_difference
    print(f"wrote {result.graph} ({result.size_bytes / 2**20:.1f} MiB, {result.nodes} nodes, "
          f"{result.batch_norms_folded} BatchNorms folded, {result.batch_norms_left} left)")
    print(f"      {result.labels}, {result.info}" + (f", SavedModel {result.saved_model}" if result.saved_model else ""))
    print(f"verified against finetune eval's pipeline on {len(result.sample_sizes)} raw images "
          f"({', '.join(result.sample_sizes)}): max |difference| logits {difference['logits']:.2e} "
          f"(relative {difference['logits_relative']:.2e}), probabilities {difference['probabilities']:.2e}")
    return 0


def _run_tflite(args: argparse.Namespace) -> int:
    from finetune.serve import tflite_export

    if not args.output or args.hub or args.saved_model or args.input_type != "float":
        raise ValueError("--tflite writes one .tflite: give --output DIR/model.tflite, without --hub, --saved-model "
                         "or --input-type (export those in another run).")
    if args.tflite_input != "uint8" and args.tflite != "int8":
        raise ValueError(f"--tflite-input is the int8 model's input type; a {args.tflite} model takes float32 "
                         "pixels: drop --tflite-input, or give --tflite int8.")
    calibration = tflite_export.folder_images(args.calibration) if args.calibration else None
    splits = {}
    if args.train_dir:  # the run's images; needed only to calibrate an int8 model without --calibration
        splits = _run_splits(args.train_dir, required=args.tflite == "int8" and calibration is None)
    result = tflite_export.export_tflite(
        _model(args), args.output, args.tflite, input_type=args.tflite_input, calibration=calibration or splits.get("train"),
        validation=splits.get("validation"), min_agreement=args.min_agreement, overwrite=args.overwrite)
    kind = result.quantization + (f", {result.input_dtype} input" if result.quantization == "int8" else "")
    print(f"wrote {result.path} ({kind}, {result.size_bytes / 2**20:.2f} MiB)")
    print(f"      {result.labels}, {result.info}")
    if result.calibration:
        print(f"calibrated on {result.calibration_images} images ({result.calibration})")
    print(f"verified against the float graph on {result.images} images ({result.verified_on}): top-1 agreement "
          f"{result.agreement:.1%} (at least {result.min_agreement:.0%}), max probability difference "
          f"{result.max_probability_difference:.2e}")
    return 0


def _run_splits(train_dir: str, required: bool) -> dict:
    from finetune.serve import tflite_export

    try:
        return tflite_export.run_images(train_dir)
    except ValueError:  # the run's dataset is gone or unreadable
        if required:
            raise
        return {}
