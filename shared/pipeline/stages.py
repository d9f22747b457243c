"""One step of the chain without a queue: build a stage's request from the chain state, call the pure
stage function, add its result and duration. Used by the Celery tasks and by ``ctriage analyze``.

Stage modules are imported on first use, so a gate worker never imports the screener's code.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from shared.contracts import ChainState, GateResult, LocalizeRequest, ScreenRequest, Stage
from shared.storage.base import ObjectStore

STAGE_FUNCTIONS: dict[Stage, str] = {
    Stage.gate: "worker_gate.stage:run_gate",
    Stage.screen: "worker_screener.stage:run_screener",
    Stage.localize: "worker_localizer.stage:run_localizer",
}


def advance(*, stage: Stage, store: ObjectStore, state: ChainState) -> ChainState:
    """Run ``stage`` on ``state`` and return the new state (the input is not modified)."""
    state = state.model_copy(deep=True)
    function = _stage_function(stage)
    started = time.perf_counter()
    if stage is Stage.gate:
        state.gate = function(store=store, request=state.gate_request)
    elif stage is Stage.screen:
        gate = _accepted_gate(state)
        state.screen = function(store=store, request=ScreenRequest(run_id=state.run_id, volume_key=gate.volume_key, organs_key=gate.organs_key))
    else:
        gate, screen = _accepted_gate(state), state.screen
        if screen is None:
            raise ValueError("the localizer needs the screener's result")
        state.localize = function(store=store, request=LocalizeRequest(
            run_id=state.run_id, volume_key=gate.volume_key, organs_key=gate.organs_key, anomaly_key=screen.anomaly_key,
            voxel_threshold=screen.voxel_threshold, study_threshold=screen.study_threshold, score_unit=screen.score_unit,
            source_prefix=state.gate_request.source_prefix, models=[gate.model, screen.model],
        ))
    state.timings[stage.value] = round(time.perf_counter() - started, 3)
    return state


def chain_ended(state: ChainState) -> bool:
    """True once the gate rejected the study or the localizer ran."""
    return (state.gate is not None and not state.gate.accepted) or state.localize is not None


def _accepted_gate(state: ChainState) -> GateResult:
    if state.gate is None or not state.gate.accepted or not state.gate.volume_key or not state.gate.organs_key:
        raise ValueError("this stage needs a gate result that accepted the study")
    return state.gate


def _stage_function(stage: Stage) -> Callable[..., object]:
    module, name = STAGE_FUNCTIONS[stage].split(":")
    return getattr(importlib.import_module(module), name)
