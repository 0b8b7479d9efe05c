"""snnexp: Hydra-configured few-shot experiments with spiking neural networks."""
