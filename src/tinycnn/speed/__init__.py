"""What makes training fast without changing what it computes: the machine's settings
(auto_settings.py), CUDA graphs of a whole step, folded evaluation and cheap dropout masks."""
