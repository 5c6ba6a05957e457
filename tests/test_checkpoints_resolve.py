"""What a --ckpt value means, and the one line for one that is no checkpoint."""

from __future__ import annotations

import pytest

import checkpoints


@pytest.mark.parametrize("file, source_format", [("model.tflite", "tflite"), ("weights.h5", "keras"),
                                                 ("mobilenet.weights.h5", "keras")])
def test_a_weights_file_of_another_format_points_to_convert_weights(tmp_path, file, source_format):
    path = tmp_path / file
    path.write_bytes(b"TFL3 not a checkpoint")
    with pytest.raises(ValueError) as error:
        checkpoints.plan_restore({"MobilenetV1/Conv2d_0/weights": (3, 3, 3, 8)}, str(path))  # as training reads --ckpt
    message = str(error.value)
    assert message == (f"{path} is {'a TFLite model' if source_format == 'tflite' else 'a Keras weights file'}, not a "
                       f"TensorFlow checkpoint: convert it with `finetune convert-weights --from {source_format} {path} "
                       "--net NET --output CKPT`, then give --ckpt CKPT")


def test_another_file_is_still_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt is not a TensorFlow checkpoint \(neither a V2 prefix"):
        checkpoints.resolve_checkpoint(str(path))
