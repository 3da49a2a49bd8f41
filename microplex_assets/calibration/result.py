"""What a calibration solver returns (``solver.calibrate``, ``chi_square``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class CalibrationResult:
    weights: np.ndarray  # chosen effective weights, float64, >= 0, one per household
    # one row per epoch: epoch, train_loss, holdout_loss, objective (the penalised objective
    # minimised), seconds (cumulative wall since calibrate started)[, gates_open]
    history: pd.DataFrame
    best_epoch: int
    seconds: float
    config: dict[str, Any]  # asdict(config) + device (and threads) actually used
    train_loss: float = math.nan  # of the returned weights, float64 throughout
    holdout_loss: float = math.nan
    fitted_targets: int = 0  # train targets actually fitted (after min_abs_target)
    stopped_early: bool = False
