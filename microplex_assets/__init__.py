"""Microplex-US asset graph: one subpackage per build stage."""

import warnings

from dagster import BetaWarning, PreviewWarning

# Partitioned asset checks (preview) and code references (beta) are used on purpose;
# their warnings would otherwise repeat on every load of the code location.
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", category=BetaWarning)
