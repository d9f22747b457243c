"""The learned screener's parts: view geometry, VICReg, density, calibration, checkpoint integrity, and a
short training run — each checked against an independent reference (sklearn, plain geometry), not itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.mixture import GaussianMixture

from shared.phantoms import generate_phantom
from worker_screener.model.calibration import Calibration
from worker_screener.model.checkpoint import ModelIntegrityError, load_screener, next_version, save_screener
from worker_screener.model.condition import ConditionConfig, ConditionNet, checkerboard, context_nll, mixture_nll
from worker_screener.model.density import ConditionalDensity, GaussianMixtureDensity
from worker_screener.model.flow import ConditionalFlow
from worker_screener.model.network import DescriptorConfig
from worker_screener.model.preprocess import BODY_LEVEL, MODEL_SPACING, extend_to_window, prepare, to_volume_grid
from worker_screener.model.synthetic import SyntheticConfig, synthetic_nll
from worker_screener.model.vicreg import vicreg_loss
from worker_screener.model.views import VIEW_SIZE, gather_first, gather_second, matched_voxels, render_view, sample_views
from worker_screener.training.corpus import EVALUATION_SEEDS, TRAIN_SEEDS, VALIDATION_SEEDS
from worker_screener.training.condition import CropAugmentation, fine_tune_condition, train_condition
from worker_screener.training.descriptor import train_descriptor
from worker_screener.training.synthetic import VISIBLE_CHANGE, draw_anomalies, train_synthetic
from worker_screener.training.texture import FAT_HU, textured
from worker_screener.training.warp import warped

SMALL = DescriptorConfig(descriptor_dim=8, channels=(4, 8, 16, 16), projector_dim=16)
SMALL_CONDITION = ConditionConfig(channels=(4, 8, 16, 16))
SMALL_SYNTHETIC = SyntheticConfig(channels=(4, 8, 16, 16))


@pytest.fixture(scope="module")
def prepared_phantom():
    phantom = generate_phantom(seed=930_001, shape=(64, 128, 128))
    return phantom, prepare(phantom.volume.hu, phantom.volume.spacing)


def test_splits_never_meet():
    assert not set(EVALUATION_SEEDS) & set(TRAIN_SEEDS)
    assert not set(EVALUATION_SEEDS) & set(VALIDATION_SEEDS)
    assert not set(TRAIN_SEEDS) & set(VALIDATION_SEEDS)


def test_prepare_crops_to_body_at_model_spacing(prepared_phantom):
    phantom, prepared = prepared_phantom
    volume = phantom.volume
    extent_mm = [(part.stop - part.start) * s for part, s in zip(prepared.box, volume.spacing[::-1])]
    model_mm = [n * s for n, s in zip(prepared.image.shape, MODEL_SPACING[::-1])]
    assert np.allclose(extent_mm, model_mm, atol=max(MODEL_SPACING))
    assert 0.0 <= prepared.image.min() and prepared.image.max() <= 1.0
    # the lungs are inside the body mask, the air around the patient is not
    back = to_volume_grid(prepared.body.astype(np.float32), prepared) > 0.5
    lungs = np.isin(phantom.labels, [1, 2, 3, 4, 5, 28, 29])
    assert back[lungs].mean() > 0.97
    assert not back[0, 0, 0]


def test_a_scan_that_cuts_the_body_is_extended_with_its_own_border_planes_and_one_ending_in_air_is_not():
    rng = np.random.default_rng(0)
    slab = np.zeros((5, 12, 12), np.float32)
    slab[:, 3:9, 3:9] = rng.uniform(BODY_LEVEL + 0.05, 1.0, (5, 6, 6))  # body cut by the first and last slices, air around it
    extended, inside = extend_to_window(slab, (12, 16, 16))
    assert extended.shape == (12, 12, 12) and np.array_equal(extended[inside], slab)
    assert all(np.array_equal(plane, slab[0]) for plane in extended[:inside[0].start])
    assert all(np.array_equal(plane, slab[-1]) for plane in extended[inside[0].stop:])
    whole, same = extend_to_window(slab, (5, 16, 16))
    assert whole is slab and same == (slice(0, 5), slice(0, 12), slice(0, 12))


def test_matched_voxels_show_the_same_anatomy_in_both_views(prepared_phantom):
    _, prepared = prepared_phantom
    rng = np.random.default_rng(1)
    image = torch.from_numpy(prepared.image)[None, None]
    body = torch.from_numpy(prepared.body)
    first, second = sample_views(np.argwhere(prepared.body), rng)
    a, b = render_view(image, first), render_view(image, second)
    mine, theirs = matched_voxels(first, second, body, rng, 500)
    assert len(mine) > 100
    left, right = gather_first(a, mine)[:, 0], gather_second(b, theirs)[:, 0]
    # same patient points, resampled at different spacings: intensities agree far better than shuffled pairs
    matched_error = (left - right).abs().mean()
    shuffled_error = (left - right[torch.randperm(len(right))]).abs().mean()
    assert matched_error < 0.4 * shuffled_error
    assert a.shape[2:] == VIEW_SIZE


def test_vicreg_terms():
    x = torch.randn(512, 16) * 2
    loss, terms = vicreg_loss(x, x.clone())
    assert terms["inv"] == 0.0 and terms["var"] == 0.0
    collapsed = torch.zeros(512, 16)
    _, terms = vicreg_loss(collapsed, collapsed)
    assert terms["var"] == pytest.approx(2 * (1 - 0.01), abs=1e-3)  # sqrt(0 + 1e-4) = 0.01, for both branches
    correlated = torch.randn(512, 1).repeat(1, 16) * 2
    assert vicreg_loss(correlated, correlated)[1]["cov"] > 10 * vicreg_loss(x, x)[1]["cov"]


@pytest.mark.parametrize("diagonal,components", [(True, 1), (False, 3)])
def test_density_nll_matches_sklearn(diagonal, components):
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(0, 1, (400, 5)), rng.normal(4, 0.5, (400, 5))])
    density = GaussianMixtureDensity.fit(data, components=components, diagonal=diagonal)
    reference = GaussianMixture(n_components=components, covariance_type="diag" if diagonal else "full",
                                reg_covar=1e-4, max_iter=200, random_state=0).fit(data)
    probe = rng.normal(2, 2, (50, 5))
    ours = density.nll(torch.tensor(probe, dtype=torch.float32), chunk=16).numpy()
    assert np.allclose(ours, -reference.score_samples(probe), rtol=1e-3, atol=1e-3)


def test_conditional_density_judges_each_voxel_against_its_own_organ_group():
    rng = np.random.default_rng(0)
    lung, soft = rng.normal(-3, 0.3, (3000, 2)), rng.normal(3, 0.3, (3000, 2))
    density = ConditionalDensity.fit(np.r_[lung, soft], np.r_[np.ones(3000), np.full(3000, 2)].astype(np.uint8), components=1)
    soft_like = torch.full((1, 2), 3.0)
    in_lung, in_mediastinum = density.nll(soft_like, torch.tensor([1])), density.nll(soft_like, torch.tensor([2]))
    assert in_lung.item() > in_mediastinum.item() + 50  # soft tissue is ordinary in the mediastinum only
    unseen_group = density.nll(soft_like, torch.tensor([4]))  # no density of its own: the pooled one
    assert in_mediastinum.item() < unseen_group.item() < in_lung.item()
    restored = ConditionalDensity.from_state(density.state())
    assert torch.allclose(restored.nll(soft_like, torch.tensor([1])), in_lung)


def test_conditional_flow_learns_each_organ_groups_tissue():
    rng = np.random.default_rng(0)
    lung = rng.normal(-3, 0.3, (3000, 4)) + np.array([0, 0, 1, -1]) * rng.normal(0, 1, (3000, 1))  # correlated, not axis-aligned
    soft = rng.normal(3, 0.3, (3000, 4))
    flow = ConditionalFlow.fit(np.r_[lung, soft], np.r_[np.ones(3000), np.full(3000, 2)].astype(np.uint8), steps=300, batch=512,
                               lr=3e-3, log=lambda _: None)
    soft_like, lung_like = torch.full((1, 4), 3.0), torch.tensor([[-3.0, -3.0, -3.0, -3.0]])
    assert flow.nll(soft_like, torch.tensor([1])).item() > flow.nll(soft_like, torch.tensor([2])).item() + 5  # ordinary in the mediastinum only
    assert flow.nll(lung_like, torch.tensor([2])).item() > flow.nll(lung_like, torch.tensor([1])).item() + 5
    probe, groups = torch.tensor(rng.normal(0, 3, (64, 4)), dtype=torch.float32), torch.from_numpy(rng.integers(0, 5, 64))
    assert torch.allclose(flow.nll(probe, groups, chunk=7), flow.nll(probe, groups), atol=1e-5)  # chunking changes nothing


def test_checkerboard_colours_partition_the_grid_into_blocks():
    shape, block = (10, 20, 30), (4, 8, 8)
    first, second = checkerboard(shape, block, phase=0), checkerboard(shape, block, phase=1)
    assert not (first & second).any() and (first | second).all()
    assert first[:4, :8, :8].all() and not first[4:8, :8, :8].any() and not first[:4, 8:16, :8].any()
    shifted = checkerboard(shape, block, offset=(1, 0, 0), phase=0)
    assert shifted[:3, :8, :8].all() and not shifted[3, 0, 0]


def test_context_nll_averages_the_passes_of_every_scoring_offset(prepared_phantom):
    torch.manual_seed(0)
    _, prepared = prepared_phantom
    z, y, x = (n // 2 for n in prepared.image.shape)
    image = prepared.image[z - 8:z + 8, y - 16:y + 16, x - 16:x + 16].copy()
    shifted = ConditionNet(ConditionConfig(channels=(4, 8, 16, 16), block=(4, 8, 8), scoring_offsets=((0, 0, 0), (2, 4, 4)))).eval()

    def single(offset):
        network = ConditionNet(dataclasses.replace(shifted.config, scoring_offsets=(offset,))).eval()
        network.load_state_dict(shifted.state_dict())
        return context_nll(network, image, device=torch.device("cpu"), window=(16, 32, 32))

    both = context_nll(shifted, image, device=torch.device("cpu"), window=(16, 32, 32))
    first, second = single((0, 0, 0)), single((2, 4, 4))
    assert not torch.allclose(first, second)  # the shift hides different voxels with different contexts
    assert torch.allclose(both, (first + second) / 2, atol=1e-5)


@pytest.mark.parametrize("components", [1, 3])
def test_mixture_nll_is_the_gaussian_mixture_log_density(components):
    logits, mean, log_var = (torch.randn(2, components, 4, 4, 4) for _ in range(3))
    target = torch.randn(2, 1, 4, 4, 4)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits.movedim(1, -1)),
        torch.distributions.Normal(mean.movedim(1, -1), (0.5 * log_var.movedim(1, -1)).exp()))
    expected = -mixture.log_prob(target[:, 0])[:, None]
    assert torch.allclose(mixture_nll(torch.cat([logits, mean, log_var], dim=1), target), expected, atol=1e-5)


def test_drawn_anomalies_change_only_the_body_and_the_target_is_where_they_show(prepared_phantom):
    _, prepared = prepared_phantom
    crop = (slice(8, 56), slice(16, 112), slice(0, 128))
    image, body = prepared.image[crop].copy(), prepared.body[crop]
    drawn_any = 0
    for seed in range(12):
        drawn, target = draw_anomalies(image, body, np.random.default_rng(seed))
        assert drawn.shape == image.shape and drawn.dtype == np.float32 and 0 <= drawn.min() and drawn.max() <= 1
        assert np.array_equal(drawn[~body], image[~body]), "an anomaly leaked outside the body"
        assert not (target & ~body).any()
        moved = np.abs(ndimage.uniform_filter(drawn, 3) - ndimage.uniform_filter(image, 3))
        assert (moved[target] > 0).all(), "a target voxel whose neighbourhood did not change"
        assert not (moved[body & ~ndimage.binary_dilation(target, iterations=4)] > 2 * VISIBLE_CHANGE).any(), "a visible change left out of the target"
        drawn_any += bool(target.any())
    assert drawn_any >= 8, "most crops should get at least one visible anomaly"


def test_tissue_texture_roughens_fat_soft_tissue_and_bone_but_leaves_lung_and_air_alone(prepared_phantom):
    _, prepared = prepared_phantom
    image, body = prepared.image, prepared.body
    hu = image * 1300.0 - 1000.0
    fat = body & (hu > FAT_HU[0]) & (hu <= FAT_HU[1])
    untouched = ~body | (hu <= FAT_HU[0])
    roughened = 0
    for seed in range(6):
        out = textured(image, body, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.shape == image.shape and 0 <= out.min() and out.max() <= 1
        assert np.array_equal(out[untouched], image[untouched]), "lung, air or the outside changed"
        change_hu = (out - image) * 1300.0
        # a field millimetres across, not voxel noise: neighbouring fat voxels change alike
        inner = fat & np.roll(fat, 1, axis=2)
        neighbours = np.corrcoef(change_hu[inner], np.roll(change_hu, 1, axis=2)[inner])[0, 1]
        roughened += change_hu[fat].std() > 5.0 and neighbours > 0.3
    assert roughened >= 4, "most draws should give fat a visible, spatially smooth texture"


def test_warp_bends_anatomy_smoothly_and_keeps_its_tissues(prepared_phantom):
    _, prepared = prepared_phantom
    image, body = prepared.image, prepared.body
    same_image, same_body = warped(image, body, np.random.default_rng(0), strength=0.0)
    assert np.allclose(same_image, image, atol=1e-5) and np.array_equal(same_body, body), "no displacement must change nothing"
    hu = image * 1300.0 - 1000.0
    moved_voxels = []
    for seed in range(4):
        out, out_body = warped(image, body, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.shape == image.shape and out_body.shape == body.shape
        out_hu = out * 1300.0 - 1000.0
        # moved, not erased: bone and lung keep roughly their volume, and the body its extent
        assert abs((out_hu > 150).sum() / (hu > 150).sum() - 1) < 0.15
        assert abs((out_hu < -700).sum() / (hu < -700).sum() - 1) < 0.1
        assert abs(out_body.sum() / body.sum() - 1) < 0.05
        moved_voxels.append(np.mean(np.abs(out - image) > 0.05))
    assert max(moved_voxels) > 0.01, "some draw must move tissue boundaries visibly"


def test_calibration_maps_the_reference_quantile_to_the_threshold():
    nll = np.random.default_rng(0).gamma(2.0, 1.0, 100_000)
    calibration = Calibration.fit(nll, reference_quantile=0.999)
    scores = calibration.scores(torch.tensor([calibration.nll_median - 1, calibration.nll_median, calibration.nll_reference, 1e3]))
    assert scores[0] == 0 and scores[1] == 0
    assert scores[2].item() == pytest.approx(0.7, abs=1e-6)
    assert 0.99 < scores[3].item() <= 1.0
    assert (calibration.scores(torch.tensor(nll, dtype=torch.float32)) >= 0.7).float().mean().item() == pytest.approx(0.001, abs=3e-4)


def test_short_training_run_learns_and_round_trips_through_a_verified_checkpoint(prepared_phantom, tmp_path):
    _, prepared = prepared_phantom
    network, summary = train_descriptor([prepared], minutes=5, max_steps=4, device=torch.device("cpu"), pairs=1,
                                        matches=256, config=SMALL, log=lambda _: None)
    assert summary["steps"] == 4 and np.isfinite(summary["final_loss"])
    descriptors = np.random.default_rng(0).normal(size=(6000, SMALL.descriptor_dim))
    density = ConditionalDensity.fit(descriptors, np.repeat([0, 1, 2], 2000), components=2)
    condition, condition_summary = train_condition([prepared], minutes=5, max_steps=3, device=torch.device("cpu"),
                                                   config=SMALL_CONDITION, log=lambda _: None)
    assert condition_summary["steps"] == 3 and np.isfinite(condition_summary["final_loss"])
    before = {name: value.clone() for name, value in condition.state_dict().items()}
    condition, texture_summary = fine_tune_condition(condition, [prepared], augmentation=CropAugmentation(texture=1.0), minutes=5, max_steps=2,
                                                     device=torch.device("cpu"), log=lambda _: None)
    assert texture_summary["steps"] == 2 and texture_summary["texture"] == 1.0 and np.isfinite(texture_summary["final_loss"])
    assert any(not torch.equal(before[name], value) for name, value in condition.state_dict().items()), "fine-tuning left the network as it was"
    synthetic, synthetic_summary = train_synthetic([prepared], minutes=5, max_steps=3, device=torch.device("cpu"),
                                                   config=SMALL_SYNTHETIC, log=lambda _: None)
    assert synthetic_summary["steps"] == 3 and np.isfinite(synthetic_summary["final_loss"])
    calibration = Calibration(nll_median=1.0, nll_reference=5.0, reference_quantile=0.999)
    path = save_screener(folder=tmp_path, network=network, density=density, condition=condition, synthetic=synthetic,
                         terms=("descriptor", "context"), calibration=calibration, study_threshold=1.5, version="test",
                         metadata={"purpose": "test"})
    loaded = load_screener(tmp_path, "cpu")
    assert loaded.checksum == loaded.model.checksum and loaded.study_threshold == 1.5
    assert loaded.terms == ("descriptor", "context") and loaded.condition.config == SMALL_CONDITION
    assert loaded.synthetic.config == SMALL_SYNTHETIC
    image = torch.from_numpy(prepared.image[:32, :64, :64].copy())[None, None]
    with torch.inference_mode():
        assert torch.allclose(loaded.network(image), network.eval()(image), atol=1e-5)
    context = context_nll(loaded.condition, prepared.image[:32, :64, :64].copy(), device=torch.device("cpu"), window=(32, 64, 64))
    assert context.shape == (32, 64, 64) and torch.isfinite(context).all()
    assert torch.allclose(context, context_nll(condition, prepared.image[:32, :64, :64].copy(), device=torch.device("cpu"), window=(32, 64, 64)))
    evidence = synthetic_nll(loaded.synthetic, prepared.image[:32, :64, :64].copy(), device=torch.device("cpu"), window=(32, 64, 64))
    assert evidence.shape == (32, 64, 64) and (evidence >= 0).all()
    assert torch.allclose(evidence, synthetic_nll(synthetic, prepared.image[:32, :64, :64].copy(), device=torch.device("cpu"), window=(32, 64, 64)))
    load_screener.cache_clear()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_screener(tmp_path, "cpu")
    load_screener.cache_clear()
    assert next_version(tmp_path) == "1"  # "test" is no number to count on from
    retrained = save_screener(folder=tmp_path, network=network, density=density, condition=condition, synthetic=synthetic,
                              terms=("context",), calibration=calibration, study_threshold=2.0, version="2", metadata={})
    assert sorted(tmp_path.glob("*.pt")) == [retrained], "the superseded (here corrupted) weights file was left beside the new one"
    assert load_screener(tmp_path, "cpu").version == "2" and next_version(tmp_path) == "3"
    load_screener.cache_clear()
