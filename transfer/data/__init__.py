"""Data: the BLINK-format loader, the synthetic BLINK-format suite and the prompt format."""
