"""transfer: measure task transfer in vision-language models with Hydra-configured sweeps."""
