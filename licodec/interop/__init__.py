"""Weights of other toolkits brought into licodec's form (one module per toolkit)."""
