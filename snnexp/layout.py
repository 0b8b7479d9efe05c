"""What a run directory holds, named once: ``metrics.json`` and ``checkpoints/{best,last}.pt``.

Imports nothing, so the command line's checks before Hydra (``snnexp.cli``) read it without
loading torch.
"""

METRICS_FILE = "metrics.json"  # the run's results (``snnexp.evaluation.metrics_record``)
CHECKPOINT_DIR = "checkpoints"  # best.pt (best validation) and last.pt
