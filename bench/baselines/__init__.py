"""The subjects our converter is compared with, each runnable as `python -m bench.baselines.<name>`."""
