"""The onnxruntime backend: ONNX export of a checkpoint's networks and their runtime sessions."""
