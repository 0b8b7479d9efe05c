"""Few-shot learners: the spiking Prototypical Network and the NumPy R-STDP network."""
