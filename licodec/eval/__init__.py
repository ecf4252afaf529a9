"""Evaluation: metrics, classical codecs, BD-rate."""
