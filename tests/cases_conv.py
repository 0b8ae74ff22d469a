"""Case-table entries for the convolution and pooling primitives (see cases.py)."""
CASES = []
