"""Many PACS associations at once, and a receiver killed mid-study: nothing lost, nothing split, one run per series."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dimse_testkit import database_of, phantom_study, require_dcmtk, start_receiver, storescu

from shared.dicom.volume import Volume
from shared.dicom.writer import write_ct_series
from shared.phantoms import generate_phantom

ASSOCIATIONS, STUDIES_EACH, SLICES = 10, 3, 8


def distinct_studies(root: Path, count: int) -> list[Path]:
    """``count`` one-series studies of different patients (three phantom anatomies, fresh UIDs each)."""
    anatomies = [generate_phantom(seed=200 + k, shape=(SLICES, 48, 48)).volume for k in range(3)]
    folders = []
    for index in range(count):
        volume = anatomies[index % 3]
        meta = dataclasses.replace(
            volume.meta, study_instance_uid="", series_instance_uid="", frame_of_reference_uid="",
            sop_instance_uids=[], patient_id=f"CONCURRENT-{index:02d}",
        )
        folder = root / f"study-{index:02d}"
        write_ct_series(Volume(hu=volume.hu, affine=volume.affine, meta=meta), folder, uid_entropy=f"concurrent-{index}")
        folders.append(folder)
    return folders


def test_ten_concurrent_associations_lose_and_split_nothing(tmp_path: Path) -> None:
    require_dcmtk()
    studies = distinct_studies(tmp_path / "studies", ASSOCIATIONS * STUDIES_EACH)
    receiver = start_receiver(tmp_path, completeness_quiet_seconds=3)
    try:
        with ThreadPoolExecutor(ASSOCIATIONS) as pool:
            results = list(pool.map(
                lambda k: storescu(receiver.port, *studies[k * STUDIES_EACH:(k + 1) * STUDIES_EACH]), range(ASSOCIATIONS)
            ))
        for result in results:
            assert result.returncode == 0, result.stderr[-2000:]

        database = database_of(tmp_path)
        series = database.wait_until(
            lambda rows: len(rows) == len(studies) and all(row.completed_at is not None for row in rows),
            what="every series complete",
        )
        assert len({row.study_instance_uid for row in series}) == len(studies)  # one series per study: none split
        assert {(row.n_instances, row.instance_rows) for row in series} == {(SLICES, SLICES)}
        assert all(row.runs == 1 for row in series), [row.runs for row in series]
        assert len(set(database.storage_keys())) == len(studies) * SLICES
        for key in database.storage_keys():
            assert (tmp_path / "var" / "objects" / key).is_file()
    finally:
        receiver.stop()


def test_one_series_sent_over_three_associations_at_once_stays_one_series(tmp_path: Path) -> None:
    require_dcmtk()
    files = phantom_study(tmp_path / "study", seed=33, n_slices=24)
    receiver = start_receiver(tmp_path)
    try:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda k: storescu(receiver.port, *files[k::3]), range(3)))
        assert all(result.returncode == 0 for result in results), [r.stderr[-500:] for r in results]

        [series] = database_of(tmp_path).wait_until(lambda rows: bool(rows) and rows[0].completed_at is not None,
                                                    what="the series complete")
        assert (series.n_instances, series.instance_rows, series.runs) == (24, 24, 1)
    finally:
        receiver.stop()


def test_a_receiver_killed_mid_study_loses_nothing_and_completes_once(tmp_path: Path) -> None:
    require_dcmtk()
    files = phantom_study(tmp_path / "study", seed=31, n_slices=20)
    # Longer than the restart takes even on a busy machine, so the half series is not complete meanwhile.
    settings = {"completeness_quiet_seconds": 20}
    first = start_receiver(tmp_path, **settings)
    sent_first = storescu(first.port, *files[:10])
    assert sent_first.returncode == 0, sent_first.stderr
    first.kill()  # SIGKILL: no shutdown code runs

    second = start_receiver(tmp_path, **settings)
    try:
        sent_rest = storescu(second.port, *files[10:])
        assert sent_rest.returncode == 0, sent_rest.stderr
        database = database_of(tmp_path)
        [series] = database.wait_until(lambda rows: len(rows) == 1 and rows[0].completed_at is not None,
                                       timeout=120, what="the series complete")
        assert (series.n_instances, series.instance_rows, series.runs) == (20, 20, 1)
    finally:
        second.stop()


def test_instances_arriving_after_completion_rerun_the_same_series(tmp_path: Path) -> None:
    require_dcmtk()
    files = phantom_study(tmp_path / "study", seed=32, n_slices=8)
    receiver = start_receiver(tmp_path, completeness_quiet_seconds=2)
    try:
        assert storescu(receiver.port, *files[:-1]).returncode == 0
        database = database_of(tmp_path)
        [first] = database.wait_until(lambda rows: len(rows) == 1 and rows[0].completed_at is not None and rows[0].runs == 1,
                                      what="the first completion")
        [first_run] = database.run_ids(first.id)

        assert storescu(receiver.port, files[-1]).returncode == 0

        [series] = database.wait_until(lambda rows: rows[0].completed_at is not None and rows[0].n_instances == 8,
                                       what="the second completion")
        assert series.id == first.id and series.instance_rows == 8  # the same series, never a second one
        # The first run, still queued (no workers here), analysed 7 of 8 instances: replaced by a new one.
        [second_run] = database.run_ids(series.id)
        assert second_run != first_run
    finally:
        receiver.stop()
