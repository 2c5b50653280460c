"""Pretrained models shipped with sciconv (filled in by the real-data work)."""
