"""Deployable students: exported artefacts (safetensors with metadata, ONNX, TorchScript),
their parity checks and model cards, and the runners that restore images with them."""
