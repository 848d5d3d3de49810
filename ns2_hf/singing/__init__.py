"""Singing from a score: MIDI melody + lyrics → per-phoneme durations and per-frame f0 for `NS2Pipeline`."""

from .score import HOLD, Note, ScoreError, SingingConditions, load_score, read_midi, score_to_conditions

__all__ = ["HOLD", "Note", "ScoreError", "SingingConditions", "load_score", "read_midi", "score_to_conditions"]
