"""Datasets (class pools) and the N-way K-shot episode sampler."""
