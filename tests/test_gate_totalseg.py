"""The TotalSegmentator gate backend runs TotalSegmentator's real code path on model folders built here.

The test writes, where TotalSegmentator looks for them, the two nnU-Net v2 model folders its fast
mode with ``roi_subset`` loads (tasks 298 and 297: ``plans.json``, ``dataset.json`` with its 117
``total`` classes, ``fold_0/checkpoint_final.pth``), holding tiny networks of the architecture the
plans describe with hand-set weights: the 6 mm model calls everything heart (so the crop keeps the
whole scan); the 3 mm one calls air ``lung_upper_lobe_left``, soft tissue ``heart`` and bone
``rib_left_3``. The phantom is soft tissue with an air pocket and a bone bar off-centre, its axes flipped,
so a label map transposed or mirrored on its way back would not line up with it.

Checked: the adapter (volume -> NIfTI -> TotalSegmentator python API -> nnU-Net -> label map on the
volume's own grid), the mapping of TotalSegmentator's class names onto ours, usage statistics off
(config file, and no HTTP request made), a clear error for missing weights (nothing downloaded)
and for a corrupt checkpoint. It checks NOTHING of segmentation quality: the networks are not
trained, and the labels follow HU thresholds wired into their weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("totalsegmentator")
pytest.importorskip("nnunetv2")

import torch

from shared.anatomy import label_of
from shared.config import get_settings
from shared.dicom.volume import Volume
from worker_gate.backend import (
    BackendUnavailable,
    describe_active_backend,
    select_backend,
)
from worker_gate.totalseg import (
    CONFIGURATION,
    PLANS,
    TRAINER,
    TotalSegmentatorError,
    model_folders,
)

AIR, TISSUE, BONE = -1000, 40, 700
MEAN_HU, STD_HU = -400.0, 300.0
"""CT normalisation of the plans: air -> -2, tissue -> +1.5, bone -> +3.7."""
BONE_Z = 2.5
"""Normalised intensity above which the 3 mm network says bone."""


@pytest.fixture
def totalseg_home(tmp_path, monkeypatch):
    """An empty TOTALSEG_HOME_DIR; nnU-Net's path variables restored after the test (TotalSegmentator sets them)."""
    home = tmp_path / "totalseg"
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(home))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(variable, str(home / "nnunet" / "results"))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def no_network(monkeypatch):
    """Every HTTP request TotalSegmentator could make (statistics, licence, weights) is recorded and refused."""
    import requests

    calls: list[str] = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise requests.ConnectionError("no network in this test")

    monkeypatch.setattr(requests, "post", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    return calls


@pytest.fixture
def models(totalseg_home):
    """The two fast-mode model folders, built; ``{task id: folder}``."""
    from totalsegmentator.map_to_binary import class_map

    classes = class_map["total"]
    for task_id, folder in model_folders().items():
        _write_model(folder, task_id, classes)
    return model_folders()


def _phantom() -> Volume:
    """48x40x36 voxels of 2 mm of soft tissue with an air pocket and a bone bar off-centre; the k and
    i axes run against LPS z and x."""
    hu = np.full((36, 40, 48), TISSUE, dtype=np.int16)
    hu[8:20, 10:24, 10:22] = AIR + 150  # the "lung": off-centre in every axis
    hu[20:30, 24:34, 26:42] = BONE
    affine = np.diag([-2.0, 2.0, -2.0, 1.0])
    affine[:3, 3] = (40.0, -30.0, 100.0)
    return Volume(hu=hu, affine=affine)


def test_fast_mode_runs_through_totalsegmentator_and_maps_its_classes(models, no_network, totalseg_home):
    backend = select_backend("totalsegmentator")
    volume = _phantom()
    segmentation = backend.segment(volume)

    labels = segmentation.labels
    assert labels.shape == volume.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {label_of("lung_upper_lobe_left"), label_of("heart"), label_of("ribs"),
                                      label_of("lung_vessels"), label_of("body")}
    # each class lies where the network's HU rule puts it, on the volume's own (flipped) grid
    air, tissue, bone = volume.hu < -400, (volume.hu > -400) & (volume.hu < 400), volume.hu > 400
    lobe, heart, ribs = (labels == label_of(name) for name in ("lung_upper_lobe_left", "heart", "ribs"))
    assert (lobe & air).sum() / lobe.sum() > 0.95 and (lobe & air).sum() / air.sum() > 0.9
    assert (heart & tissue).sum() / heart.sum() > 0.9 and (heart & tissue).sum() / tissue.sum() > 0.8
    assert (ribs & bone).sum() / ribs.sum() > 0.9 and (ribs & bone).sum() / bone.sum() > 0.5  # blurred at 3 mm
    assert set(segmentation.found) == {"lung_upper_lobe_left", "heart", "ribs"}
    voxel_ml = 8.0 / 1000.0
    assert segmentation.found["heart"] == pytest.approx(tissue.sum() * voxel_ml, rel=0.2)

    config = json.loads((totalseg_home / "config.json").read_text())
    assert config["send_usage_stats"] is False and config["prediction_counter"] == 1
    assert no_network == []
    assert backend.model.name == "totalsegmentator-total-fast"


def test_the_worker_log_names_the_totalsegmentator_backend(models, totalseg_home, monkeypatch):
    monkeypatch.setenv("CTRIAGE_GATE_BACKEND", "totalsegmentator")
    assert describe_active_backend().startswith("gate backend: totalsegmentator (TotalSegmentator fast, task total, on cpu")
    monkeypatch.setenv("CTRIAGE_GATE_BACKEND", "auto")
    get_settings.cache_clear()
    assert select_backend().name == "totalsegmentator"


def test_missing_weights_are_a_clear_error_and_nothing_is_downloaded(totalseg_home, no_network, monkeypatch):
    with pytest.raises(BackendUnavailable, match="weights are not installed") as error:
        select_backend("totalsegmentator")
    assert "task 297" in str(error.value) and "task 298" in str(error.value)
    assert "totalseg_download_weights -t total_fast" in str(error.value)
    monkeypatch.setenv("CTRIAGE_GATE_BACKEND", "builtin")
    assert "TotalSegmentator not usable" in describe_active_backend()
    assert select_backend("auto").name == "builtin"
    assert no_network == [] and not (totalseg_home / "nnunet").exists()


def test_one_missing_model_is_named(models, totalseg_home):
    (models[298] / "fold_0" / "checkpoint_final.pth").unlink()
    with pytest.raises(BackendUnavailable, match="task 298") as error:
        select_backend("totalsegmentator")
    assert "task 297" not in str(error.value)


def test_a_corrupt_checkpoint_is_named(models, no_network):
    checkpoint = models[298] / "fold_0" / "checkpoint_final.pth"  # the first model loaded
    checkpoint.write_bytes(checkpoint.read_bytes()[:4096])  # a truncated copy
    backend = select_backend("totalsegmentator")
    with pytest.raises(TotalSegmentatorError, match="checkpoint of task 298 is unreadable"):
        backend.segment(_phantom())


def _write_model(folder: Path, task_id: int, classes: dict[int, str]) -> None:
    """One nnU-Net v2 model folder as ``nnUNetPredictor.initialize_from_trained_model_folder`` reads it."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    spacing = 6.0 if task_id == 298 else 3.0
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{name: i for i, name in classes.items()}},
               "numTraining": 1, "file_ending": ".nii.gz"}
    plans = _plans(folder.parent.name, spacing)
    (folder / "fold_0").mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    manager = PlansManager(plans)
    network = recursive_find_trainer_class_by_name(TRAINER).build_network_architecture(
        manager, manager.get_configuration(CONFIGURATION), 1, len(classes) + 1, enable_deep_supervision=False,
    )
    _set_weights(network, classes, crop_model=task_id == 298)
    torch.save({"network_weights": network.state_dict(), "trainer_name": TRAINER,
                "init_args": {"plans": plans, "configuration": CONFIGURATION, "fold": 0, "dataset_json": dataset},
                "inference_allowed_mirroring_axes": None}, folder / "fold_0" / "checkpoint_final.pth")


def _plans(dataset_name: str, spacing: float) -> dict:
    """nnU-Net v2 plans of a two-stage plain U-Net (3, 4 features, ReLU, no norm) on 16^3 patches."""
    resampling = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    architecture = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": 2, "features_per_stage": [3, 4], "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]], "n_conv_per_stage": [1, 1],
            "n_conv_per_stage_decoder": [1], "conv_bias": True, "norm_op": None, "norm_op_kwargs": None,
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.ReLU", "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    return {
        "dataset_name": dataset_name, "plans_name": PLANS, "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager", "image_reader_writer": "NibabelIOWithReorient",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "original_median_spacing_after_transp": [spacing] * 3, "original_median_shape_after_transp": [32, 32, 32],
        "foreground_intensity_properties_per_channel": {"0": {
            "mean": MEAN_HU, "std": STD_HU, "percentile_00_5": -1024.0, "percentile_99_5": 1500.0,
            "median": 0.0, "min": -1024.0, "max": 3000.0}},
        "configurations": {CONFIGURATION: {
            "data_identifier": f"{PLANS}_{CONFIGURATION}", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": [16, 16, 16], "median_image_size_in_voxels": [32, 32, 32],
            "spacing": [spacing] * 3, "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_data_kwargs": resampling,
            "resampling_fn_seg": "resample_data_or_seg_to_shape", "resampling_fn_seg_kwargs": {**resampling, "is_seg": True},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": resampling, "architecture": architecture, "batch_dice": False,
        }},
    }


def _set_weights(network: torch.nn.Module, classes: dict[int, str], *, crop_model: bool) -> None:
    """Hand-set weights: the crop model says heart everywhere; the other thresholds the normalised HU.

    Encoder stage 0 computes relu(x), relu(-x) and relu(x - BONE_Z) at every voxel; the decoder
    passes them on from the skip connection (its input channels 3..5 follow the 3 upsampled ones);
    the 1x1 segmentation layer turns them into air -> lobe, tissue -> heart, bone -> rib logits.
    """
    index = {name: i for i, name in classes.items()}
    params = dict(network.named_parameters())
    with torch.no_grad():
        for tensor in params.values():
            tensor.zero_()
        seg_w, seg_b = params["decoder.seg_layers.0.weight"], params["decoder.seg_layers.0.bias"]
        seg_b.fill_(-100.0)
        if crop_model:
            seg_b[index["heart"]] = 100.0
            return
        conv_w, conv_b = params["encoder.stages.0.0.convs.0.conv.weight"], params["encoder.stages.0.0.convs.0.conv.bias"]
        for channel, (sign, bias) in enumerate(((1.0, 0.0), (-1.0, 0.0), (1.0, -BONE_Z))):
            conv_w[channel, 0, 1, 1, 1] = sign
            conv_b[channel] = bias
        decoder_w = params["decoder.stages.0.convs.0.conv.weight"]
        for channel in range(3):
            decoder_w[channel, 3 + channel, 1, 1, 1] = 1.0
        tissue, air, bone = 0, 1, 2
        seg_b[[index["lung_upper_lobe_left"], index["heart"], index["rib_left_3"]]] = 0.0
        seg_w[index["lung_upper_lobe_left"], air] = 10.0
        seg_w[index["heart"], tissue], seg_w[index["heart"], bone] = 10.0, -20.0
        seg_w[index["rib_left_3"], bone] = 20.0
