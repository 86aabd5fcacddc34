"""Production MSL (MLX, candle, ggml, PyTorch MPS) run against numpy: the corpus harness (see docs/corpus.md)."""
