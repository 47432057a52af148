"""Where a trained network goes: ONNX (fp32 and int8, checked against torch on the test set),
C for a microcontroller (int8, integer-only), and predictions on real images."""
