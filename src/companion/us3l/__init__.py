"""US3L: universally slimmable self-supervised learning (Cao, Sun, Zhou, CVPR 2023).

Book chapter: *US3L*. The width-sliceable layers live in :mod:`companion.slimmable`.
"""

from . import config
from .estimate import full_run_hours, run_hours
from .experiment import evaluate_width, load_data, run
from .model import MODES, SlimmableSSL
from .schedule import (channel_groups, group_coefficients, group_regularization, lower_bound, regularization_alpha,
                       sample_widths, width_steps)

__all__ = ["config", "run", "run_hours", "full_run_hours", "evaluate_width", "load_data", "MODES", "SlimmableSSL",
           "channel_groups",
           "group_coefficients", "group_regularization", "lower_bound", "regularization_alpha", "sample_widths",
           "width_steps"]
