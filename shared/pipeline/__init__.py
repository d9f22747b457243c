"""The analysis pipeline around the stage functions: artifacts, run bookkeeping, dispatch, reports, CLI."""
